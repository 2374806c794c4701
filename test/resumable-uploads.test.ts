import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'drizzle-orm';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { collectStorageGarbage } from '../src/modules/attachments/storage-gc.ts';
import { purgeExpiredUploads } from '../src/modules/attachments/uploads.repository.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';
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
import type { AttachmentBody } from './helpers/uploads.ts';

// Resumable uploads over tus 1.0 at /v1/uploads (docs/ATTACHMENTS.md, "Resumable and direct uploads"), on the
// local disk; test/direct-uploads.test.ts has them on S3, with presigned PUTs.

/** The most bytes a file may have in these tests (PARLEY_ATTACHMENT_MAX_BYTES). */
const MAX_FILE_BYTES = 2 * 1024 * 1024;

let t: TestApp;
let storageRoot: string;
let base: string;

beforeAll(async () => {
  storageRoot = await mkdtemp(path.join(tmpdir(), 'parley-tus-test-'));
  t = await buildTestApp(await createTestDatabase(), {
    attachments: { storage: new LocalDiskStorage(storageRoot), limits: { maxFileBytes: MAX_FILE_BYTES } },
    backgroundWork: { sendEveryMs: 100 },
  });
  base = await listen(t);
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
  await rm(storageRoot, { recursive: true, force: true });
});

async function listen(app: TestApp): Promise<string> {
  await app.app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('not listening');
  return `http://127.0.0.1:${address.port}`;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;
const tusHeaders = (tenant: TestTenant, userId: string) => ({
  ...actingAs(tenant, userId),
  'tus-resumable': '1.0.0',
});

/** The files under the storage root for tus uploads (the upload's bytes and the store's `.json`). */
async function tusFiles(): Promise<string[]> {
  if (!existsSync(path.join(storageRoot, 'tus'))) return [];
  return (await readdir(path.join(storageRoot, 'tus'))).sort();
}

/** Creates an upload with tus' POST; its id. */
async function createUpload(
  app: TestApp,
  tenant: TestTenant,
  userId: string,
  length: number,
  name = 'file.bin',
): Promise<string> {
  const created = await app.app.inject({
    method: 'POST',
    url: '/v1/uploads',
    headers: {
      ...tusHeaders(tenant, userId),
      'upload-length': String(length),
      'upload-metadata': metadata(name),
    },
  });
  expect(created.statusCode, created.body).toBe(201);
  const location = String(created.headers.location);
  expect(location).toMatch(/^\/v1\/uploads\/[0-9a-f-]{36}$/);
  expect(created.headers['upload-expires']).toBeDefined();
  return location.slice('/v1/uploads/'.length);
}

function patch(
  app: TestApp,
  tenant: TestTenant,
  userId: string,
  id: string,
  offset: number,
  body: Buffer,
  headers: Record<string, string> = {},
) {
  return app.app.inject({
    method: 'PATCH',
    url: `/v1/uploads/${id}`,
    headers: {
      ...tusHeaders(tenant, userId),
      'content-type': 'application/offset+octet-stream',
      'upload-offset': String(offset),
      ...headers,
    },
    payload: body,
  });
}

/** HEAD answers carry a problem's status and type, but no body. */
function expectHeadStatus(
  response: { statusCode: number; headers: Record<string, unknown> },
  status: number,
) {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
}

const head = (app: TestApp, tenant: TestTenant, userId: string, id: string) =>
  app.app.inject({ method: 'HEAD', url: `/v1/uploads/${id}`, headers: tusHeaders(tenant, userId) });

/**
 * A PATCH of all of `data` at offset 0 over a real connection, cut (the socket destroyed) once its first
 * `sent` bytes are written: a mobile client losing its network mid-request.
 */
function patchCutShort(
  tenant: TestTenant,
  id: string,
  data: Buffer,
  sent: number,
  headers: Record<string, string> = {},
): Promise<void> {
  return new Promise<void>((resolve) => {
    const request = http.request(`${base}/v1/uploads/${id}`, {
      method: 'PATCH',
      headers: {
        ...tusHeaders(tenant, 'ann'),
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '0',
        'content-length': String(data.length),
        ...headers,
      },
    });
    request.on('error', () => resolve());
    request.write(data.subarray(0, sent), () => {
      setTimeout(() => {
        request.destroy();
        resolve();
      }, 200);
    });
  });
}

/** Uploads `data` with tus-js-client, the protocol's reference client, in chunks: the upload's URL. */
function uploadWithTusClient(
  tenant: TestTenant,
  userId: string,
  data: Buffer,
  name: string,
  chunkSize: number,
) {
  return new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${base}/v1/uploads`,
      headers: actingAs(tenant, userId),
      metadata: { filename: name, filetype: 'application/x-claimed' },
      chunkSize,
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(upload.url ?? ''),
    });
    upload.start();
  });
}

describe('resumable uploads (tus)', () => {
  it('answers discovery without credentials: version, extensions, checksum algorithms, size limit', async () => {
    const options = await t.app.inject({ method: 'OPTIONS', url: '/v1/uploads' });
    expect(options.statusCode, options.body).toBe(204);
    expect(options.headers['tus-version']).toBe('1.0.0');
    expect(String(options.headers['tus-extension']).split(',')).toEqual(
      expect.arrayContaining(['creation', 'creation-with-upload', 'termination', 'checksum', 'expiration']),
    );
    expect(String(options.headers['tus-extension'])).not.toContain('creation-defer-length');
    expect(String(options.headers['tus-checksum-algorithm']).split(',')).toContain('sha1');
    expect(options.headers['tus-max-size']).toBe(String(MAX_FILE_BYTES));
    expect(options.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('takes a file from a third-party tus client in chunks and makes it the attachment the upload names', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const data = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(700_000)]);
    const url = await uploadWithTusClient(tenant, 'ann', data, 'report.pdf', 128 * 1024);
    const id = url.split('/').at(-1) ?? '';
    const attachment = await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`);
    expect(attachment.statusCode, attachment.body).toBe(200);
    expect(attachment.json()).toMatchObject({
      id,
      name: 'report.pdf',
      size: data.length,
      sha256: sha256(data),
      // What the bytes are, not the client's `filetype`.
      content_type: 'application/pdf',
      status: 'ready',
    });
    // Sent like any upload.
    const dm = await asUser(t, tenant, 'ann').post('/v1/direct-messages', {
      to: 'bob',
      text: 'the report',
      attachment_ids: [id],
    });
    expect(dm.statusCode, dm.body).toBe(201);
    // The upload's own copy is removed once the attachment holds the bytes.
    await vi.waitFor(async () => expect(await tusFiles()).toEqual([]), { timeout: 10_000, interval: 100 });
    const served = await t.app.inject({ method: 'GET', url: attachment.json<AttachmentBody>().url });
    expect(served.statusCode).toBe(200);
    expect(sha256(served.rawPayload)).toBe(sha256(data));
  });

  it('keeps what arrived before a connection dropped, and finishes from there', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = randomBytes(1_000_000);
    const id = await createUpload(t, tenant, 'ann', data.length, 'big.bin');
    // A PATCH of everything, cut off after its first 300,000 bytes.
    await patchCutShort(tenant, id, data, 300_000);
    let offset = 0;
    await vi.waitFor(
      async () => {
        const status = await head(t, tenant, 'ann', id);
        expect(status.statusCode, status.body).toBe(200);
        offset = Number(status.headers['upload-offset']);
        expect(offset).toBe(300_000);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect((await head(t, tenant, 'ann', id)).headers['upload-length']).toBe(String(data.length));
    const rest = await patch(t, tenant, 'ann', id, offset, data.subarray(offset));
    expect(rest.statusCode, rest.body).toBe(204);
    expect(rest.headers['upload-offset']).toBe(String(data.length));
    expect(rest.headers['parley-attachment-id']).toBe(id);
    const attachment = await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`);
    expect(attachment.json()).toMatchObject({ size: data.length, sha256: sha256(data) });
  });

  it('refuses a PATCH at another offset than the upload’s (409) and changes nothing', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const id = await createUpload(t, tenant, 'ann', 10);
    expect((await patch(t, tenant, 'ann', id, 0, Buffer.from('abcd'))).statusCode).toBe(204);
    expectProblem(await patch(t, tenant, 'ann', id, 2, Buffer.from('cdef')), 409, 'conflict');
    expectProblem(await patch(t, tenant, 'ann', id, 9, Buffer.from('xy')), 409, 'conflict');
    expect((await head(t, tenant, 'ann', id)).headers['upload-offset']).toBe('4');
    // More than the declared length.
    expectProblem(await patch(t, tenant, 'ann', id, 4, Buffer.from('efghijklmn')), 413, 'payload_too_large');
    expect((await head(t, tenant, 'ann', id)).headers['upload-offset']).toBe('4');
    expectProblem(
      await t.app.inject({
        method: 'PATCH',
        url: `/v1/uploads/${id}`,
        headers: { ...tusHeaders(tenant, 'ann'), 'content-type': 'application/offset+octet-stream' },
        payload: Buffer.from('ef'),
      }),
      400,
      'validation_failed',
    );
  });

  it('checks Upload-Checksum: a body that differs is 460 and none of it is kept', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = Buffer.from('hello, checksummed world');
    const id = await createUpload(t, tenant, 'ann', data.length, 'c.txt');
    const first = data.subarray(0, 10);
    const digest = (algorithm: string, bytes: Buffer) =>
      `${algorithm} ${createHash(algorithm).update(bytes).digest('base64')}`;
    expectProblem(
      await patch(t, tenant, 'ann', id, 0, first, {
        'upload-checksum': digest('sha1', Buffer.from('other')),
      }),
      460,
      'checksum_mismatch',
    );
    expect((await head(t, tenant, 'ann', id)).headers['upload-offset']).toBe('0');
    expectProblem(
      await patch(t, tenant, 'ann', id, 0, first, { 'upload-checksum': 'crc32 AAAAAA==' }),
      400,
      'validation_failed',
    );
    expectProblem(
      await patch(t, tenant, 'ann', id, 0, first, { 'upload-checksum': 'sha1 c2hvcnQ=' }),
      400,
      'validation_failed',
    );
    const ok = await patch(t, tenant, 'ann', id, 0, first, { 'upload-checksum': digest('sha1', first) });
    expect(ok.statusCode, ok.body).toBe(204);
    const last = await patch(t, tenant, 'ann', id, 10, data.subarray(10), {
      'upload-checksum': digest('sha256', data.subarray(10)),
    });
    expect(last.statusCode, last.body).toBe(204);
    expect((await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`)).json()).toMatchObject({
      sha256: sha256(data),
      content_type: 'text/plain',
    });
  });

  it('keeps nothing of a checksummed chunk cut short: its checksum could not be verified', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = randomBytes(200_000);
    const id = await createUpload(t, tenant, 'ann', data.length, 'sum.bin');
    const checksum = `sha1 ${createHash('sha1').update(data).digest('base64')}`;
    await patchCutShort(tenant, id, data, 80_000, { 'upload-checksum': checksum });
    // Unlike a plain PATCH (above), none of the 80,000 bytes that arrived is kept.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await head(t, tenant, 'ann', id)).headers['upload-offset']).toBe('0');
    const whole = await patch(t, tenant, 'ann', id, 0, data, { 'upload-checksum': checksum });
    expect(whole.statusCode, whole.body).toBe(204);
  });

  it('refuses a bad creation with its 4xx and keeps nothing of it', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const filesBefore = await tusFiles();
    const create = (headers: Record<string, string>) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/uploads',
        headers: { ...actingAs(tenant, 'ann'), ...headers },
      });
    const good = { 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': metadata('a.txt') };
    expect((await create({ ...good, 'tus-resumable': '' })).statusCode).toBe(412);
    const noVersion = await create({ 'upload-length': '10', 'upload-metadata': metadata('a.txt') });
    expectProblem(noVersion, 412, 'precondition_failed');
    expectProblem(
      await create({ ...good, 'upload-length': String(MAX_FILE_BYTES + 1) }),
      413,
      'payload_too_large',
    );
    expectProblem(await create({ ...good, 'upload-length': '0' }), 400, 'validation_failed');
    expectProblem(await create({ ...good, 'upload-length': 'ten' }), 400, 'validation_failed');
    const deferred = {
      'tus-resumable': '1.0.0',
      'upload-defer-length': '1',
      'upload-metadata': metadata('a'),
    };
    expectProblem(await create(deferred), 400, 'validation_failed');
    expectProblem(await create({ ...good, 'upload-concat': 'partial' }), 400, 'validation_failed');
    expectProblem(
      await create({ ...good, 'upload-metadata': 'filetype dGV4dA==' }),
      400,
      'validation_failed',
    );
    expectProblem(
      await create({ ...good, 'upload-metadata': metadata('../etc/passwd') }),
      400,
      'validation_failed',
    );
    expectProblem(
      await create({ ...good, 'upload-metadata': metadata('a\u0000b') }),
      400,
      'validation_failed',
    );
    expectProblem(
      await create({ ...good, 'upload-metadata': metadata('x'.repeat(1000)) }),
      400,
      'validation_failed',
    );
    expectProblem(await create({ ...good, 'upload-metadata': 'filename ###' }), 400, 'validation_failed');
    const [count] = rowsOf<{ uploads: string | number; reservations: string | number }>(
      await inTenant(t.database.db.orm, tenant.id, (scope) =>
        scope.tx.execute(
          sql`SELECT (SELECT count(*) FROM uploads) AS uploads, (SELECT count(*) FROM storage_reservations) AS reservations`,
        ),
      ),
    );
    expect(Number(count?.uploads)).toBe(0);
    expect(Number(count?.reservations)).toBe(0);
    for (const name of await tusFiles()) expect(filesBefore).toContain(name);
  });

  it('reserves the quota for the whole upload at creation, and gives it back on termination', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const quota = await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { storage_quota_bytes: 1000 },
    });
    expect(quota.statusCode, quota.body).toBe(200);
    const first = await createUpload(t, tenant, 'ann', 900);
    const create = (length: number) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/uploads',
        headers: {
          ...tusHeaders(tenant, 'ann'),
          'upload-length': String(length),
          'upload-metadata': metadata('b'),
        },
      });
    expectProblem(await create(200), 507, 'quota_exceeded');
    // A multipart upload meets the same reservation.
    expect((await patch(t, tenant, 'ann', first, 0, Buffer.alloc(100, 1))).statusCode).toBe(204);
    const terminated = await t.app.inject({
      method: 'DELETE',
      url: `/v1/uploads/${first}`,
      headers: tusHeaders(tenant, 'ann'),
    });
    expect(terminated.statusCode, terminated.body).toBe(204);
    expectHeadStatus(await head(t, tenant, 'ann', first), 404);
    expect((await create(200)).statusCode).toBe(201);
    await vi.waitFor(
      async () => expect((await tusFiles()).filter((name) => name.startsWith(first))).toEqual([]),
      {
        timeout: 10_000,
        interval: 100,
      },
    );
  });

  it('answers 404 for another user’s or another tenant’s upload, whatever the method', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const other = await createTenantWithUsers(t, 'ann');
    const id = await createUpload(t, tenant, 'ann', 10);
    for (const [who, userId] of [
      [tenant, 'bob'],
      [other, 'ann'],
    ] as const) {
      expectHeadStatus(await head(t, who, userId, id), 404);
      expectProblem(await patch(t, who, userId, id, 0, Buffer.from('0123456789')), 404, 'not_found');
      expectProblem(
        await t.app.inject({ method: 'DELETE', url: `/v1/uploads/${id}`, headers: tusHeaders(who, userId) }),
        404,
        'not_found',
      );
    }
    expect((await head(t, tenant, 'ann', id)).headers['upload-offset']).toBe('0');
    // Credentials are needed for all but discovery.
    expect(
      (
        await t.app.inject({
          method: 'HEAD',
          url: `/v1/uploads/${id}`,
          headers: { 'tus-resumable': '1.0.0' },
        })
      ).statusCode,
    ).toBe(401);
  });

  it('answers a finished upload as done: HEAD at its length, a repeated last PATCH 204, DELETE 409', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const id = await createUpload(t, tenant, 'ann', 5, 'five.txt');
    expect((await patch(t, tenant, 'ann', id, 0, Buffer.from('12345'))).statusCode).toBe(204);
    const status = await head(t, tenant, 'ann', id);
    expect(status.statusCode).toBe(200);
    expect(status.headers).toMatchObject({
      'upload-offset': '5',
      'upload-length': '5',
      'parley-attachment-id': id,
    });
    const again = await patch(t, tenant, 'ann', id, 5, Buffer.alloc(0));
    expect(again.statusCode, again.body).toBe(204);
    expect(again.headers['upload-offset']).toBe('5');
    expectProblem(await patch(t, tenant, 'ann', id, 0, Buffer.from('12345')), 409, 'conflict');
    expectProblem(
      await t.app.inject({ method: 'DELETE', url: `/v1/uploads/${id}`, headers: tusHeaders(tenant, 'ann') }),
      409,
      'conflict',
    );
    expect((await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`)).json()).toMatchObject({
      name: 'five.txt',
    });
  });

  it('makes the attachment on a HEAD when the request with the last bytes failed after storing them', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const id = await createUpload(t, tenant, 'ann', 4, 'late.txt');
    // The last bytes written straight to the store: as if the PATCH failed after they were stored.
    const store = new LocalDiskStorage(storageRoot).resumable().store;
    await store.write(Readable.from([Buffer.from('late')]), `tus/${id}`, 0);
    expectProblem(await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`), 404, 'not_found');
    const status = await head(t, tenant, 'ann', id);
    expect(status.headers).toMatchObject({ 'upload-offset': '4', 'parley-attachment-id': id });
    expect((await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`)).json()).toMatchObject({
      sha256: sha256(Buffer.from('late')),
    });
  });

  it('removes an expired upload’s bytes (410 until then), and an erased user’s', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const expired = await createUpload(t, tenant, 'ann', 10);
    const bobs = await createUpload(t, tenant, 'bob', 10);
    const kept = await createUpload(t, tenant, 'ann', 10);
    for (const [userId, id] of [
      ['ann', expired],
      ['bob', bobs],
      ['ann', kept],
    ] as const) {
      expect((await patch(t, tenant, userId, id, 0, Buffer.from('01234'))).statusCode).toBe(204);
    }
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(
        sql`UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = ${expired}`,
      ),
    );
    expectHeadStatus(await head(t, tenant, 'ann', expired), 410);
    expectProblem(await patch(t, tenant, 'ann', expired, 5, Buffer.from('56789')), 410, 'gone');
    expect(await purgeExpiredUploads(t.database.db.orm, 1000)).toBeGreaterThanOrEqual(1);
    expectHeadStatus(await head(t, tenant, 'ann', expired), 404);
    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/bob',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(erased.statusCode, erased.body).toBe(204);
    await vi.waitFor(
      async () => {
        const files = await tusFiles();
        expect(files.filter((name) => name.startsWith(expired) || name.startsWith(bobs))).toEqual([]);
        expect(files).toContain(kept);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect((await head(t, tenant, 'ann', kept)).headers['upload-offset']).toBe('5');
  });

  it('leaves parley attachments gc an upload under way, and has it remove what no upload holds', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const kept = await createUpload(t, tenant, 'ann', 10);
    const lostRemoval = await createUpload(t, tenant, 'ann', 10);
    for (const id of [kept, lostRemoval]) {
      expect((await patch(t, tenant, 'ann', id, 0, Buffer.from('01234'))).statusCode).toBe(204);
    }
    // A finished upload whose bytes' removal never ran (its row finished, its key cleared)...
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`UPDATE uploads SET key = NULL, finished_at = now() WHERE id = ${lostRemoval}`),
    );
    // ...and the files of an upload with no row at all: a PATCH that wrote on after its upload was removed.
    const rowless = randomUUID();
    await writeFile(path.join(storageRoot, 'tus', rowless), 'stray');
    await writeFile(path.join(storageRoot, 'tus', `${rowless}.json`), '{}');
    const orphans = [lostRemoval, `${lostRemoval}.json`, rowless, `${rowless}.json`].map(
      (name) => `tus/${name}`,
    );
    const storage = new LocalDiskStorage(storageRoot);

    const dry = await collectStorageGarbage(t.database.db.orm, storage, { dryRun: true });
    expect(dry.orphans.map((orphan) => orphan.key).sort()).toEqual(orphans.sort());
    expect(await tusFiles()).toEqual(expect.arrayContaining([lostRemoval, rowless]));

    const run = await collectStorageGarbage(t.database.db.orm, storage, { dryRun: false });
    expect(run.orphans.map((orphan) => orphan.key).sort()).toEqual(orphans.sort());
    expect(run.foreign).toBe(0);
    const left = await tusFiles();
    expect(left).toEqual(expect.arrayContaining([kept, `${kept}.json`]));
    expect(left.filter((name) => name.startsWith(lostRemoval) || name.startsWith(rowless))).toEqual([]);
    expect((await head(t, tenant, 'ann', kept)).headers['upload-offset']).toBe('5');
    expect((await patch(t, tenant, 'ann', kept, 5, Buffer.from('56789'))).statusCode).toBe(204);
  });

  it('lets one request at a time write an upload, across processes: a newer one makes the older let go', async () => {
    // A second process of the same deployment: same database, storage and bus.
    const bus = createLocalBus();
    const first = await buildTestApp(t.database, {
      attachments: { storage: new LocalDiskStorage(storageRoot), limits: { maxFileBytes: MAX_FILE_BYTES } },
      bus,
      adminToken: t.adminToken,
      serverKey: t.serverKey,
    });
    const second = await buildTestApp(t.database, {
      attachments: { storage: new LocalDiskStorage(storageRoot), limits: { maxFileBytes: MAX_FILE_BYTES } },
      bus,
      adminToken: t.adminToken,
      serverKey: t.serverKey,
    });
    let slow: http.ClientRequest | undefined;
    try {
      const firstBase = await listen(first);
      const tenant = await createTenantWithUsers(t, 'ann');
      const id = await createUpload(t, tenant, 'ann', 1000);
      // A slow client on the first process: 100 bytes, then nothing more for now.
      slow = http.request(`${firstBase}/v1/uploads/${id}`, {
        method: 'PATCH',
        headers: {
          ...tusHeaders(tenant, 'ann'),
          'content-type': 'application/offset+octet-stream',
          'upload-offset': '0',
          'content-length': '1000',
        },
      });
      // Settles when the first process ends the request, however (an answer, or the connection closed).
      const request = slow;
      const slowEnded = new Promise<'ended'>((resolve) => {
        request.on('response', (response) => {
          response.resume();
          resolve('ended');
        });
        request.on('error', () => resolve('ended'));
        request.on('close', () => resolve('ended'));
      });
      request.write(Buffer.alloc(100, 1));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The client gave up on that connection and resumes on the second process. Its HEAD makes the first
      // request let go (what it received is stored), wherever it runs: without that, the old request would
      // stay open, writing into the upload beside the resumed one.
      const status = await head(second, tenant, 'ann', id);
      expect(status.statusCode).toBe(200);
      expect(status.headers['upload-offset']).toBe('100');
      const stillOpen = new Promise<'still open'>((resolve) =>
        setTimeout(() => resolve('still open'), 10_000),
      );
      expect(await Promise.race([slowEnded, stillOpen])).toBe('ended');
      // A stale resume at the old offset is refused; the right one finishes the upload.
      expectProblem(await patch(second, tenant, 'ann', id, 0, Buffer.alloc(1000, 2)), 409, 'conflict');
      const rest = await patch(second, tenant, 'ann', id, 100, Buffer.alloc(900, 2));
      expect(rest.statusCode, rest.body).toBe(204);
      slow.destroy();
      const attachment = await asUser(t, tenant, 'ann').get(`/v1/attachments/${id}`);
      expect(attachment.json()).toMatchObject({
        sha256: sha256(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(900, 2)])),
      });
    } finally {
      await first.app.close();
      await second.app.close();
    }
  });

  it('has no direct uploads on the disk: presign answers 409 and points to the other ways', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const presigned = await asUser(t, tenant, 'ann').post('/v1/attachments/presign', {
      name: 'a.txt',
      size: 10,
    });
    expectProblem(presigned, 409, 'conflict');
    expect(presigned.json<{ detail: string }>().detail).toContain('/v1/uploads');
  });
});
