import { RENDITIONS, type Rendition } from './attachment-links.ts';

// Where an attachment's objects are in storage: Parley's ids only, never a client's name. One home for the
// layout, which uploads and processing write and `parley attachments gc` reads.

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const ATTACHMENT_KEY = new RegExp(`^(${UUID})/(${UUID})/(?:upload|(?:${RENDITIONS.join('|')})-\\d+)$`);

/** The key of an upload's bytes as received. */
export const uploadKey = (tenantId: string, attachmentId: string) => `${tenantId}/${attachmentId}/upload`;

/**
 * The key of a rendition made by one processing attempt: each attempt writes under keys of its own, so a
 * removal queued by an attempt that failed never names what a later one made.
 */
export const renditionKey = (tenantId: string, attachmentId: string, rendition: Rendition, attempt: number) =>
  `${tenantId}/${attachmentId}/${rendition}-${attempt}`;

/** The tenant and attachment of a key Parley writes; undefined for any other key (not Parley's). */
export function attachmentOfKey(key: string): { tenantId: string; id: string } | undefined {
  const match = ATTACHMENT_KEY.exec(key);
  if (!match?.[1] || !match[2]) return undefined;
  return { tenantId: match[1], id: match[2] };
}

const TUS_KEY = new RegExp(`^tus/(${UUID})$`);
/** A tus upload's bytes or a file its store keeps beside them: `.json` (disk), `.info` and `.part` (S3). */
const TUS_STORED_KEY = new RegExp(`^tus/(${UUID})(?:\\.(?:json|info|part))?$`);

/**
 * Where a tus upload keeps its bytes until it finishes (the tus store's id, under the storage's own root or
 * prefix): one namespace beside the tenants', which the removal queue names to remove an unfinished one.
 */
export const tusUploadKey = (uploadId: string) => `tus/${uploadId}`;

/** The upload of a tus key; undefined for any other key. */
export function tusUploadOfKey(key: string): string | undefined {
  return TUS_KEY.exec(key)?.[1];
}

/** The upload of any object a tus store keeps for it (its bytes, its info, a held-back part). */
export function tusUploadOfStoredKey(key: string): string | undefined {
  return TUS_STORED_KEY.exec(key)?.[1];
}
