import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inTenant } from '../src/db/tenant-scope.ts';
import { collectStorageGarbage } from '../src/modules/attachments/storage-gc.ts';
import { purgeExpiredUploads } from '../src/modules/attachments/uploads.repository.ts';
import { S3Storage } from '../src/storage/s3-storage.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  actingAs,
  asUser,
  bearer,
  createTenantWithUsers,
  expectProblem,
  type TestTenant,
} from './helpers/factories.ts';
import { startS3Server, type TestS3Server } from './helpers/s3-server.ts';
import type { AttachmentBody } from './helpers/uploads.ts';

// Uploads that do not go through POST /v1/attachments, on S3 storage (s3rver on loopback): resumable tus
// uploads kept in the bucket by @tus/s3-store, and presigned PUTs straight to the bucket
// (docs/ATTACHMENTS.md, "Resumable and direct uploads"). The disk's side is test/resumable-uploads.test.ts.

const MAX_FILE_BYTES = 16 * 1024 * 1024;

let s3: TestS3Server;
let storage: S3Storage;
let t: TestApp;
let base: string;

beforeAll(async () => {
  s3 = await startS3Server();
  storage = new S3Storage({ ...s3.options, prefix: 'direct/' });
  t = await buildTestApp(await createTestDatabase(), {
    attachments: { storage, limits: { maxFileBytes: MAX_FILE_BYTES } },
    backgroundWork: { sendEveryMs: 100 },
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('not listening');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
  await s3.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function bucketKeys(prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix)) keys.push(object.key);
  return keys.sort();
}

const presign = (tenant: TestTenant, userId: string, body: Record<string, unknown>) =>
  asUser(t, tenant, userId).post('/v1/attachments/presign', body);
const complete = (tenant: TestTenant, userId: string, id: string) =>
  asUser(t, tenant, userId).post(`/v1/attachments/${id}/complete`, {});

interface Presigned {
  id: string;
  upload: { method: 'PUT'; url: string; headers: Record<string, string> };
  expires_at: string;
}

/** The client's side of a presigned upload: a PUT of the bytes straight to the bucket. */
async function put(presigned: Presigned, data: Buffer): Promise<number> {
  const response = await fetch(presigned.upload.url, {
    method: presigned.upload.method,
    headers: { ...presigned.upload.headers, 'content-length': String(data.length) },
    body: data,
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * A tus upload of 12 MiB with its first 6 MiB sent: past S3's 5 MiB part minimum, so the bucket holds a part
 * of an open multipart upload and the store's `.info`. Its id.
 */
async function startedTusUpload(tenant: TestTenant, userId: string): Promise<string> {
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/uploads',
    headers: {
      ...actingAs(tenant, userId),
      'tus-resumable': '1.0.0',
      'upload-length': String(12 * 1024 * 1024),
      'upload-metadata': `filename ${Buffer.from('x.bin').toString('base64')}`,
    },
  });
  expect(created.statusCode, created.body).toBe(201);
  const id = String(created.headers.location).split('/').at(-1) ?? '';
  const sent = await t.app.inject({
    method: 'PATCH',
    url: `/v1/uploads/${id}`,
    headers: {
      ...actingAs(tenant, userId),
      'tus-resumable': '1.0.0',
      'content-type': 'application/offset+octet-stream',
      'upload-offset': '0',
    },
    payload: randomBytes(6 * 1024 * 1024),
  });
  expect(sent.statusCode, sent.body).toBe(204);
  return id;
}

describe('resumable uploads on S3', () => {
  it('keeps the parts in the bucket, smaller than S3’s minimum too, and leaves only the attachment', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = randomBytes(7 * 1024 * 1024 + 123);
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: `${base}/v1/uploads`,
        headers: actingAs(tenant, 'ann'),
        metadata: { filename: 'video.bin' },
        // Below the 5 MiB S3 needs of a part: the store holds the rest back between requests.
        chunkSize: 3 * 1024 * 1024,
        retryDelays: [],
        onError: reject,
        onSuccess: () => resolve(upload.url ?? ''),
      });
      upload.start();
    });
    const id = url.split('/').at(-1) ?? '';
    const attachment = await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`);
    expect(attachment.json()).toMatchObject({ size: data.length, sha256: sha256(data), name: 'video.bin' });
    await vi.waitFor(async () => expect(await bucketKeys('tus/')).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
    expect(await bucketKeys(`${tenant.id}/`)).toEqual([`${tenant.id}/${id}/upload`]);
    expect(await s3.pendingMultipartUploads()).toEqual([]);
    const link = await t.app.inject({ method: 'GET', url: attachment.json<AttachmentBody>().url });
    expect(link.statusCode).toBe(302);
  });

  it('removes a terminated upload from the bucket, its multipart upload aborted', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const id = await startedTusUpload(tenant, 'ann');
    expect(await bucketKeys(`tus/${id}`)).not.toEqual([]);
    const terminated = await t.app.inject({
      method: 'DELETE',
      url: `/v1/uploads/${id}`,
      headers: { ...actingAs(tenant, 'ann'), 'tus-resumable': '1.0.0' },
    });
    expect(terminated.statusCode, terminated.body).toBe(204);
    await vi.waitFor(async () => expect(await bucketKeys(`tus/${id}`)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
    expect(await s3.pendingMultipartUploads()).toEqual([]);
  });

  it('has parley attachments gc remove what no upload holds in the bucket, and leave an upload under way', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const kept = await startedTusUpload(tenant, 'ann');
    const lost = await startedTusUpload(tenant, 'ann');
    // Finished as far as its row says, its bytes' removal never run.
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`UPDATE uploads SET key = NULL, finished_at = now() WHERE id = ${lost}`),
    );
    const lostKeys = await bucketKeys(`tus/${lost}`);
    expect(lostKeys).toContain(`tus/${lost}.info`);
    expect(await s3.pendingMultipartUploads()).toHaveLength(2);

    const report = await collectStorageGarbage(t.database.db.orm, storage, { dryRun: false });
    expect(report.orphans.map((orphan) => orphan.key).sort()).toEqual(lostKeys);
    expect(await bucketKeys(`tus/${lost}`)).toEqual([]);
    expect(await bucketKeys(`tus/${kept}`)).toContain(`tus/${kept}.info`);
    // The lost upload's multipart upload is aborted with it; the kept one's is still open.
    expect(await s3.pendingMultipartUploads()).toHaveLength(1);
  });
});

describe('presigned uploads', () => {
  it('puts the bytes straight into the bucket and makes them the attachment where they are', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const data = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(200_000)]);
    const presigned = await presign(tenant, 'ann', {
      name: 'deck.pdf',
      size: data.length,
      content_type: 'x/y',
    });
    expect(presigned.statusCode, presigned.body).toBe(201);
    const body = presigned.json<Presigned>();
    expect(body.upload.method).toBe('PUT');
    expect(body.upload.url).toContain(s3.options.endpoint);
    expect(await put(body, data)).toBe(200);
    const completed = await complete(tenant, 'ann', body.id);
    expect(completed.statusCode, completed.body).toBe(200);
    expect(completed.json()).toMatchObject({
      id: body.id,
      name: 'deck.pdf',
      size: data.length,
      sha256: sha256(data),
      content_type: 'application/pdf',
      status: 'ready',
    });
    // A retry answers the same attachment; nothing was copied.
    expect((await complete(tenant, 'ann', body.id)).json()).toMatchObject({
      id: body.id,
      sha256: sha256(data),
    });
    expect(await bucketKeys(`${tenant.id}/`)).toEqual([`${tenant.id}/${body.id}/upload`]);
    const usage = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${tenant.id}/usage`,
      headers: bearer(t.adminToken),
    });
    expect(usage.json()).toMatchObject({ storage_bytes: data.length, attachments: 1 });
    // Another user's upload is not found.
    expectProblem(await complete(tenant, 'bob', body.id), 404, 'not_found');
    // Nor is it a tus upload: /v1/uploads does not know it.
    const asTus = await t.app.inject({
      method: 'HEAD',
      url: `/v1/uploads/${body.id}`,
      headers: { ...actingAs(tenant, 'ann'), 'tus-resumable': '1.0.0' },
    });
    expect(asTus.statusCode).toBe(404);
  });

  it('refuses bytes that are not the size declared, removes them, and takes them again', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = Buffer.from('exactly these bytes');
    const body = (await presign(tenant, 'ann', { name: 'a.txt', size: data.length })).json<Presigned>();
    expectProblem(await complete(tenant, 'ann', body.id), 409, 'conflict');
    // s3rver, like some S3-compatible servers, does not hold a PUT to the signed length: Parley checks it.
    const longer = Buffer.concat([data, Buffer.from(' and more')]);
    expect(await put(body, longer)).toBe(200);
    expectProblem(await complete(tenant, 'ann', body.id), 400, 'validation_failed');
    expect(await bucketKeys(`${tenant.id}/`)).toEqual([]);
    expect(await put(body, data)).toBe(200);
    const completed = await complete(tenant, 'ann', body.id);
    expect(completed.statusCode, completed.body).toBe(200);
    expect(completed.json()).toMatchObject({ sha256: sha256(data), content_type: 'text/plain' });
  });

  it('checks the file before any byte: its name, the per-file limit, the quota', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    expectProblem(await presign(tenant, 'ann', { name: 'a/b.txt', size: 10 }), 400, 'validation_failed');
    expectProblem(await presign(tenant, 'ann', { name: 'a.txt', size: 0 }), 400, 'validation_failed');
    expectProblem(await presign(tenant, 'ann', { name: 'a.txt' }), 400, 'validation_failed');
    expectProblem(
      await presign(tenant, 'ann', { name: 'a.txt', size: MAX_FILE_BYTES + 1 }),
      413,
      'payload_too_large',
    );
    await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { storage_quota_bytes: 1000 },
    });
    expect((await presign(tenant, 'ann', { name: 'a.txt', size: 600 })).statusCode).toBe(201);
    // The first reservation holds its 600 bytes until it is completed or expires.
    expectProblem(await presign(tenant, 'ann', { name: 'b.txt', size: 600 }), 507, 'quota_exceeded');
  });

  it('removes what a presigned upload never completed put in the bucket, once it expires', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const body = (await presign(tenant, 'ann', { name: 'a.txt', size: 5 })).json<Presigned>();
    expect(await put(body, Buffer.from('12345'))).toBe(200);
    expect(await bucketKeys(`${tenant.id}/`)).toHaveLength(1);
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(
        sql`UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = ${body.id}`,
      ),
    );
    expectProblem(await complete(tenant, 'ann', body.id), 410, 'gone');
    expect(await purgeExpiredUploads(t.database.db.orm, 1000)).toBeGreaterThanOrEqual(1);
    await vi.waitFor(async () => expect(await bucketKeys(`${tenant.id}/`)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
    expectProblem(await complete(tenant, 'ann', body.id), 404, 'not_found');
  });
});
