import { randomBytes } from 'node:crypto';
import type { AttachmentView } from '../../src/modules/attachments/attachments.schemas.ts';
import type { TestApp } from './app.ts';
import { actingAs, type TestTenant } from './factories.ts';

/** One part of a multipart body: a field, or a file. */
export type FormPart =
  { name: string; value: string } | { name: string; fileName: string; data: Buffer; contentType?: string };

/** A `multipart/form-data` body, written out by hand so a test can make it exactly as wrong as it wants. */
export function multipartBody(parts: FormPart[]): { payload: Buffer; contentType: string } {
  const boundary = `----parley-test-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const isFile = 'data' in part;
    const disposition = `form-data; name="${part.name}"${isFile ? `; filename="${part.fileName}"` : ''}`;
    const headers = [`Content-Disposition: ${disposition}`];
    if (isFile) headers.push(`Content-Type: ${part.contentType ?? 'application/octet-stream'}`);
    chunks.push(Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`));
    chunks.push(isFile ? part.data : Buffer.from(part.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** `POST /v1/attachments` as a user, with these parts (one `file` part named `name` if given a Buffer). */
export function uploadParts(t: TestApp, tenant: TestTenant, userId: string, parts: FormPart[]) {
  const body = multipartBody(parts);
  return t.app.inject({
    method: 'POST',
    url: '/v1/attachments',
    headers: { ...actingAs(tenant, userId), 'content-type': body.contentType },
    payload: body.payload,
  });
}

/** Uploads one file as a user. */
export function uploadFile(
  t: TestApp,
  tenant: TestTenant,
  userId: string,
  fileName: string,
  data: Buffer,
  contentType?: string,
) {
  return uploadParts(t, tenant, userId, [
    { name: 'file', fileName, data, ...(contentType === undefined ? {} : { contentType }) },
  ]);
}

/** An attachment as the API returns it: the type of its schema. */
export type AttachmentBody = AttachmentView;
