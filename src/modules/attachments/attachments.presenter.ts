import type { AttachmentFacts, StoredRendition } from '../../db/schema/attachments.ts';
import type { AttachmentRow } from './attachments.repository.ts';
import type { FileLinker } from './file-linker.ts';
import type { AttachmentView } from './attachments.schemas.ts';

// How attachments are shown: pure functions of rows and of what messages keep of them; links are signed
// by the linker handed in.

const isThumbnail = (
  rendition: StoredRendition,
): rendition is StoredRendition & { rendition: 'thumb256' | 'thumb1024'; width: number; height: number } =>
  rendition.rendition !== 'original' && rendition.width !== null && rendition.height !== null;

/** What a message keeps of an attachment (messages.attachments): the view without links. */
export function toAttachmentFacts(row: AttachmentRow): AttachmentFacts {
  return {
    id: row.id,
    uploader_id: row.uploaderId,
    name: row.name,
    content_type: row.contentType,
    size: row.size,
    sha256: row.sha256,
    width: row.width,
    height: row.height,
    duration_ms: row.durationMs,
    status: row.status,
    rejected_reason: row.rejectedReason,
    thumbnails: row.renditions.filter(isThumbnail).map((rendition) => ({
      rendition: rendition.rendition,
      width: rendition.width,
      height: rendition.height,
      content_type: rendition.contentType,
    })),
    created_at: row.createdAt.toISOString(),
  };
}

/** An attachment as the API shows it, its links signed now. */
export function toAttachmentView(
  tenantId: string,
  conversationId: string | null,
  facts: AttachmentFacts,
  links: FileLinker,
): AttachmentView {
  const original = links.link(tenantId, facts.id, 'original');
  return {
    id: facts.id,
    conversation_id: conversationId,
    uploader_id: facts.uploader_id,
    name: facts.name,
    content_type: facts.content_type,
    size: facts.size,
    sha256: facts.sha256,
    width: facts.width,
    height: facts.height,
    ...(facts.duration_ms == null ? {} : { duration_ms: facts.duration_ms }),
    status: facts.status,
    rejected_reason: facts.rejected_reason,
    thumbnails: facts.thumbnails.map((thumbnail) => ({
      width: thumbnail.width,
      height: thumbnail.height,
      content_type: thumbnail.content_type,
      url: links.link(tenantId, facts.id, thumbnail.rendition).url,
    })),
    url: original.url,
    url_expires_at: original.expiresAt.toISOString(),
    created_at: facts.created_at,
  };
}
