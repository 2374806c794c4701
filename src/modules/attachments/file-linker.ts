import { hkdfSync } from 'node:crypto';
import { signFileLink, type Rendition } from './attachment-links.ts';

/** Signs the links of attachments' renditions as they are shown (docs/ATTACHMENTS.md, "Links"). */
export interface FileLinker {
  /** The signed path of one rendition of an attachment, and when it stops working. */
  link(tenantId: string, attachmentId: string, rendition: Rendition): { url: string; expiresAt: Date };
}

/** The key links are signed with: derived from the server key for this purpose only. */
export function fileLinkKey(serverKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', serverKey, Buffer.alloc(0), 'parley:file-links:v1', 32));
}

/**
 * A linker whose links last `ttlSeconds`, rounded up to the next whole minute: the links of one object made
 * within the same minute are the same, so a client's cache and the browser's see one URL, not a new one on
 * every read of a page of history.
 */
export function createFileLinker(
  key: Uint8Array,
  ttlSeconds: number,
  now: () => number = Date.now,
): FileLinker {
  return {
    link(tenantId, attachmentId, rendition) {
      const expiresAt = new Date(Math.ceil((now() + ttlSeconds * 1000) / 60_000) * 60_000);
      return { url: signFileLink(key, { tenantId, attachmentId, rendition, expiresAt }), expiresAt };
    },
  };
}
