import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inTenant } from '../src/db/tenant-scope.ts';
import { signFileLink } from '../src/modules/attachments/attachment-links.ts';
import { purgeUnsentAttachments } from '../src/modules/attachments/attachments.repository.ts';
import { fileLinkKey } from '../src/modules/attachments/file-linker.ts';
import { collectStorageGarbage, type GcReport } from '../src/modules/attachments/storage-gc.ts';
import { backgroundWorkStats } from '../src/jobs/background-work.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';
import type { ObjectStorage } from '../src/storage/object-storage.ts';
import { S3Storage } from '../src/storage/s3-storage.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  asUser,
  bearer,
  createTenantWithUsers,
  expectProblem,
  putUser,
  type TestTenant,
} from './helpers/factories.ts';
import { startS3Server } from './helpers/s3-server.ts';
import { uploadFile, uploadParts, type AttachmentBody } from './helpers/uploads.ts';

/** The most bytes a file may have in these tests (PARLEY_ATTACHMENT_MAX_BYTES). */
const MAX_FILE_BYTES = 2 * 1024 * 1024;

let t: TestApp;
let storageRoot: string;

beforeAll(async () => {
  storageRoot = await mkdtemp(path.join(tmpdir(), 'parley-attachments-test-'));
  t = await buildTestApp(await createTestDatabase(), {
    attachments: { storage: new LocalDiskStorage(storageRoot), limits: { maxFileBytes: MAX_FILE_BYTES } },
    backgroundWork: { sendEveryMs: 100 },
  });
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
  await rm(storageRoot, { recursive: true, force: true });
});

/** Every object in storage (temporary files of writes under way left out). */
async function storedKeys(): Promise<string[]> {
  const entries = await readdir(storageRoot, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(storageRoot, path.join(entry.parentPath, entry.name)))
    .filter((key) => !key.startsWith('.tmp'))
    .sort();
}

/** The objects of one tenant in storage. */
const keysOf = async (tenant: TestTenant) =>
  (await storedKeys()).filter((key) => key.startsWith(`${tenant.id}/`));

/** A PNG of the given size, with EXIF (an orientation and a GPS position) when asked. */
async function image(
  width: number,
  height: number,
  format: 'png' | 'jpeg' = 'png',
  exif?: boolean,
): Promise<Buffer> {
  let pipeline = sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 90 } } });
  pipeline = format === 'png' ? pipeline.png() : pipeline.jpeg();
  if (exif) {
    pipeline = pipeline
      .withExif({
        IFD0: { Copyright: 'parley-test-owner' },
        IFD3: {
          GPSLatitudeRef: 'N',
          GPSLatitude: '48/1 51/1 24/1',
          GPSLongitudeRef: 'E',
          GPSLongitude: '2/1 21/1 3/1',
        },
      })
      .withMetadata({ orientation: 6 });
  }
  return pipeline.toBuffer();
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** GET of a signed link, with no credentials. */
const fetchLink = (url: string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'GET', url, headers });

async function groupOf(tenant: TestTenant, owner: string, ...members: string[]): Promise<string> {
  const created = await asUser(t, tenant, owner).post('/v1/conversations', { type: 'group', members });
  expect(created.statusCode, created.body).toBe(201);
  return created.json<{ id: string }>().id;
}

async function waitForStatus(tenant: TestTenant, userId: string, id: string, status: string) {
  return vi.waitFor(
    async () => {
      const response = await asUser(t, tenant, userId).get(`/v1/attachments/${id}`);
      const body = response.json<AttachmentBody>();
      if (body.status !== status) throw new Error(`still ${body.status}`);
      return body;
    },
    { timeout: 20_000, interval: 100 },
  );
}

describe('uploads', () => {
  it('stores a file as it is, typed by its bytes, and serves it through its signed link', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = Buffer.from('hello, this is a plain text file\n'.repeat(100));
    const response = await uploadFile(t, tenant, 'ann', 'notes.txt', data, 'image/png');
    expect(response.statusCode, response.body).toBe(201);
    const attachment = response.json<AttachmentBody>();
    expect(attachment).toMatchObject({
      name: 'notes.txt',
      content_type: 'text/plain',
      size: data.length,
      sha256: sha256(data),
      status: 'ready',
      uploader_id: 'ann',
      conversation_id: null,
      thumbnails: [],
    });
    expect(new Date(attachment.url_expires_at).getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);

    const file = await fetchLink(attachment.url);
    expect(file.statusCode).toBe(200);
    expect(file.rawPayload.equals(data)).toBe(true);
    expect(file.headers['content-type']).toMatch(/^text\/plain/);
    expect(file.headers['x-content-type-options']).toBe('nosniff');
    expect(file.headers['etag']).toBe(`"${attachment.sha256}"`);

    const range = await fetchLink(attachment.url, { range: 'bytes=6-10' });
    expect(range.statusCode).toBe(206);
    expect(range.body).toBe(data.subarray(6, 11).toString());
    expect(range.headers['content-range']).toBe(`bytes 6-10/${data.length}`);

    const again = await fetchLink(attachment.url, { 'if-none-match': `"${attachment.sha256}"` });
    expect(again.statusCode).toBe(304);
  });

  it('reads the length of audio from its headers; other files have none', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    // 1.5 s of 16-bit mono PCM at 8 kHz, as a WAV file.
    const samples = Buffer.alloc(8000 * 2 * 1.5);
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + samples.length, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(8000, 24);
    header.writeUInt32LE(8000 * 2, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(samples.length, 40);
    const audio = await uploadFile(t, tenant, 'ann', 'voice.wav', Buffer.concat([header, samples]));
    expect(audio.statusCode, audio.body).toBe(201);
    expect(audio.json<AttachmentBody>().content_type).toMatch(/^audio\//);
    expect(audio.json()).toMatchObject({ duration_ms: 1500 });
    // A truncated one says nothing it cannot know, and is stored all the same.
    const cut = await uploadFile(t, tenant, 'ann', 'cut.wav', header.subarray(0, 20));
    expect(cut.statusCode, cut.body).toBe(201);
    const text = await uploadFile(t, tenant, 'ann', 'notes.txt', Buffer.from('no length'));
    expect(text.json()).not.toHaveProperty('duration_ms');
    const again = await asUser(t, tenant, 'ann').get(`/v1/attachments/${audio.json<AttachmentBody>().id}`);
    expect(again.json()).toMatchObject({ duration_ms: 1500 });
  });

  it('keeps a name in any script, as the client sent it, and offers it back in UTF-8', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const response = await uploadFile(t, tenant, 'ann', 'résumé 日本.txt', Buffer.from('cv'));
    expect(response.statusCode, response.body).toBe(201);
    const attachment = response.json<AttachmentBody>();
    expect(attachment.name).toBe('résumé 日本.txt');
    const file = await fetchLink(attachment.url);
    expect(file.headers['content-disposition']).toContain(
      `filename*=UTF-8''${encodeURIComponent('résumé 日本.txt')}`,
    );
  });

  it('serves what a browser could run as a download, sandboxed, whatever the client claimed', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const html = Buffer.from('<!doctype html><html><script>alert(document.cookie)</script></html>');
    const response = await uploadFile(t, tenant, 'ann', 'cat.jpg', html, 'image/jpeg');
    expect(response.statusCode, response.body).toBe(201);
    const attachment = response.json<AttachmentBody>();
    expect(attachment.content_type).toBe('text/html');
    const file = await fetchLink(attachment.url);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-disposition']).toMatch(/^attachment/);
    expect(file.headers['x-content-type-options']).toBe('nosniff');
    expect(String(file.headers['content-security-policy'])).toMatch(/sandbox/);
  });

  it('makes an image pending, then ready with thumbnails and an original stripped of its metadata', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const data = await image(2000, 1000, 'jpeg', true);
    expect(data.includes(Buffer.from('parley-test-owner'))).toBe(true);
    const response = await uploadFile(t, tenant, 'ann', 'holiday.jpg', data, 'application/octet-stream');
    expect(response.statusCode, response.body).toBe(201);
    const uploaded = response.json<AttachmentBody>();
    expect(uploaded).toMatchObject({ status: 'pending', content_type: 'image/jpeg', thumbnails: [] });

    const ready = await waitForStatus(tenant, 'ann', uploaded.id, 'ready');
    // EXIF orientation 6 (rotated a quarter turn) is applied: the served image is taller than wide.
    expect({ width: ready.width, height: ready.height }).toEqual({ width: 1000, height: 2000 });
    expect(
      ready.thumbnails.map(({ width, height, content_type }) => ({ width, height, content_type })),
    ).toEqual([
      { width: 128, height: 256, content_type: 'image/webp' },
      { width: 512, height: 1024, content_type: 'image/webp' },
    ]);
    for (const url of [ready.url, ...ready.thumbnails.map((thumbnail) => thumbnail.url)]) {
      const file = await fetchLink(url);
      expect(file.statusCode).toBe(200);
      expect(file.rawPayload.includes(Buffer.from('parley-test-owner'))).toBe(false);
      const metadata = await sharp(file.rawPayload).metadata();
      expect(metadata.exif).toBeUndefined();
    }
    expect(ready.sha256).toBe(sha256((await fetchLink(ready.url)).rawPayload));
    // The upload with its location is gone from storage; the original and two thumbnails remain.
    await vi.waitFor(
      async () =>
        expect((await keysOf(tenant)).map((key) => path.basename(key))).toEqual([
          'original-1',
          'thumb1024-1',
          'thumb256-1',
        ]),
      { timeout: 10_000, interval: 100 },
    );
  });

  it('rejects an image with more pixels than allowed, without decoding it', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    // A PNG header declaring 100,000 × 100,000 pixels, with almost no data behind it.
    const bomb = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'white' } })
      .png()
      .toBuffer();
    bomb.writeUInt32BE(100_000, 16);
    bomb.writeUInt32BE(100_000, 20);
    // The IHDR chunk's CRC must match for a reader to get that far.
    bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
    const response = await uploadFile(t, tenant, 'ann', 'bomb.png', bomb);
    expect(response.statusCode, response.body).toBe(201);
    const rejected = await waitForStatus(tenant, 'ann', response.json<AttachmentBody>().id, 'rejected');
    expect(rejected.rejected_reason).toMatch(/pixels/);
    expect(await fetchLink(rejected.url).then((file) => file.statusCode)).toBe(404);
    await vi.waitFor(async () => expect(await keysOf(tenant)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
  });
});

describe('bad uploads', () => {
  let tenant: TestTenant;
  beforeAll(async () => {
    tenant = await createTenantWithUsers(t, 'ann');
  });

  const file = (fileName: string, data = Buffer.from('some bytes')) => ({ name: 'file', fileName, data });

  it.each([
    ['an empty file', [file('empty.txt', Buffer.alloc(0))], '/body/file'],
    ['two files', [file('a.txt'), file('b.txt')], '/body/file'],
    ['no file', [{ name: 'name', value: 'x.txt' }], '/body/file'],
    ['a name with a path', [file('../../etc/passwd')], '/body/file'],
    ['a name with control characters', [file('bad\u0007name.txt')], '/body/file'],
    ['a name with a direction override', [file('invoice\u202etxt.exe')], '/body/file'],
    ['a name of 1,000 characters', [file(`${'n'.repeat(996)}.txt`)], '/body/file'],
    ['a name field with a separator', [{ name: 'name', value: 'a\\b.txt' }, file('ok.txt')], '/body/name'],
  ] as const)('refuses %s with 400, storing nothing', async (_what, parts, errorPath) => {
    const response = await uploadParts(t, tenant, 'ann', [...parts]);
    const problem = expectProblem(response, 400, 'validation_failed') as { errors?: { path: string }[] };
    expect(problem.errors?.[0]?.path).toBe(errorPath);
    // A first file stored before the second was seen is removed in the background.
    await vi.waitFor(async () => expect(await keysOf(tenant)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
  });

  it('refuses a body that is not multipart with 415', async () => {
    const response = await asUser(t, tenant, 'ann').post('/v1/attachments', { file: 'x' });
    expectProblem(response, 415, 'unsupported_media_type');
  });

  it('refuses a file over the limit with 413, storing nothing', async () => {
    const response = await uploadFile(t, tenant, 'ann', 'big.bin', Buffer.alloc(MAX_FILE_BYTES + 1, 7));
    expectProblem(response, 413, 'payload_too_large');
    expect(await keysOf(tenant)).toEqual([]);
  });

  it('refuses a body cut short with 400, storing nothing', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/attachments',
      headers: {
        ...asHeaders(tenant, 'ann'),
        'content-type': 'multipart/form-data; boundary=cut',
      },
      payload: Buffer.from(
        '--cut\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf of a file',
      ),
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(await keysOf(tenant)).toEqual([]);
  });
});

function asHeaders(tenant: TestTenant, userId: string) {
  return { ...bearer(tenant.apiKey.secret), 'x-parley-user': userId };
}

describe('quota', () => {
  it('refuses an upload beyond the quota with 507 and counts what is kept', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { storage_quota_bytes: 4000 },
    });
    expect(patched.json()).toMatchObject({ storage_quota_bytes: 4000 });
    const first = await uploadFile(t, tenant, 'ann', 'a.txt', Buffer.alloc(1000, 'a'));
    expect(first.statusCode, first.body).toBe(201);
    const second = await uploadFile(t, tenant, 'ann', 'b.txt', Buffer.alloc(3000, 'b'));
    expectProblem(second, 507, 'quota_exceeded');
    const usage = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${tenant.id}/usage`,
      headers: bearer(t.adminToken),
    });
    expect(usage.json()).toEqual({ storage_bytes: 1000, storage_quota_bytes: 4000, attachments: 1 });
    expect(await keysOf(tenant)).toHaveLength(1);
  });

  it('refuses a bad quota and answers 404 for the usage of a tenant that does not exist', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    for (const quota of [-1, 1.5, 'lots']) {
      const patched = await t.app.inject({
        method: 'PATCH',
        url: `/v1/admin/tenants/${tenant.id}`,
        headers: bearer(t.adminToken),
        payload: { storage_quota_bytes: quota },
      });
      expectProblem(patched, 400, 'validation_failed');
    }
    const unknown = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${randomUUID()}/usage`,
      headers: bearer(t.adminToken),
    });
    expectProblem(unknown, 404, 'not_found');
    const asTenant = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${tenant.id}/usage`,
      headers: bearer(tenant.apiKey.secret),
    });
    expect(asTenant.statusCode).toBe(401);
  });

  it('lets only one of two racing uploads have the last free bytes', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { storage_quota_bytes: 3000 },
    });
    const [a, b] = await Promise.all([
      uploadFile(t, tenant, 'ann', 'a.txt', Buffer.alloc(1500, 'a')),
      uploadFile(t, tenant, 'bob', 'b.txt', Buffer.alloc(1500, 'b')),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 507]);
  });
});

describe('sending', () => {
  it("binds attachments to a message; members see them, others and other tenants' ids do not", async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob', 'eve');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const uploaded = (
      await uploadFile(t, tenant, 'ann', 'plan.txt', Buffer.from('the plan'))
    ).json<AttachmentBody>();
    // Before sending, only its uploader sees it.
    expectProblem(await asUser(t, tenant, 'bob').get(`/v1/attachments/${uploaded.id}`), 404, 'not_found');

    const sent = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'see attached',
      client_msg_id: 'with-file',
      attachment_ids: [uploaded.id],
    });
    expect(sent.statusCode, sent.body).toBe(201);
    const message = sent.json<{ id: string; attachments: AttachmentBody[] }>();
    expect(message.attachments).toMatchObject([
      { id: uploaded.id, name: 'plan.txt', conversation_id: conversationId },
    ]);

    const history = await asUser(t, tenant, 'bob').get(`/v1/conversations/${conversationId}/messages`);
    const [listed] = history.json<{ data: { attachments: AttachmentBody[] }[] }>().data;
    expect(listed?.attachments.map((attachment) => attachment.id)).toEqual([uploaded.id]);
    const link = listed?.attachments[0]?.url ?? '';
    expect((await fetchLink(link)).body).toBe('the plan');

    expect((await asUser(t, tenant, 'bob').get(`/v1/attachments/${uploaded.id}`)).statusCode).toBe(200);
    expectProblem(await asUser(t, tenant, 'eve').get(`/v1/attachments/${uploaded.id}`), 404, 'not_found');
    const other = await createTenantWithUsers(t, 'ann');
    expectProblem(await asUser(t, other, 'ann').get(`/v1/attachments/${uploaded.id}`), 404, 'not_found');
    expectProblem(await asUser(t, other, 'ann').delete(`/v1/attachments/${uploaded.id}`), 404, 'not_found');

    // A retry of the send is answered by the original; a new send cannot take the same file again.
    const retry = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'see attached',
      client_msg_id: 'with-file',
      attachment_ids: [uploaded.id],
    });
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json<{ id: string }>().id).toBe(message.id);
    const reuse = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'again',
      attachment_ids: [uploaded.id],
    });
    expectProblem(reuse, 400, 'validation_failed');
    // A sent attachment goes with its message.
    expectProblem(await asUser(t, tenant, 'ann').delete(`/v1/attachments/${uploaded.id}`), 409, 'conflict');

    const search = await asUser(t, tenant, 'bob').get('/v1/search/messages?q=attached&has_attachments=true');
    expect(search.json<{ data: { message: { id: string } }[] }>().data.map((hit) => hit.message.id)).toEqual([
      message.id,
    ]);
  });

  it('sends files in a direct message, to a conversation it may create', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const uploaded = (
      await uploadFile(t, tenant, 'ann', 'dm.txt', Buffer.from('for bob'))
    ).json<AttachmentBody>();
    const sent = await asUser(t, tenant, 'ann').post('/v1/direct-messages', {
      to: 'bob',
      text: 'just for you',
      attachment_ids: [uploaded.id],
    });
    expect(sent.statusCode, sent.body).toBe(201);
    const message = sent.json<{ conversation_id: string; attachments: AttachmentBody[] }>();
    expect(message.attachments.map((attachment) => attachment.id)).toEqual([uploaded.id]);
    const seen = (
      await asUser(t, tenant, 'bob').get(`/v1/attachments/${uploaded.id}`)
    ).json<AttachmentBody>();
    expect(seen.conversation_id).toBe(message.conversation_id);
    expect((await fetchLink(seen.url)).body).toBe('for bob');
  });

  it('sends files without a caption, but never a message of neither text nor files', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const photo = (
      await uploadFile(t, tenant, 'ann', 'beach.txt', Buffer.from('sand'))
    ).json<AttachmentBody>();
    const sent = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      attachment_ids: [photo.id],
    });
    expect(sent.statusCode, sent.body).toBe(201);
    expect(sent.json()).toMatchObject({ text: '', attachments: [{ id: photo.id, name: 'beach.txt' }] });
    const another = (await uploadFile(t, tenant, 'ann', 'dm.txt', Buffer.from('dm'))).json<AttachmentBody>();
    const direct = await asUser(t, tenant, 'ann').post('/v1/direct-messages', {
      to: 'bob',
      text: '',
      attachment_ids: [another.id],
    });
    expect(direct.statusCode, direct.body).toBe(201);
    for (const [url, payload] of [
      [`/v1/conversations/${conversationId}/messages`, {}],
      [`/v1/conversations/${conversationId}/messages`, { text: '', attachment_ids: [] }],
      ['/v1/direct-messages', { to: 'bob' }],
    ] as const) {
      const refused = await asUser(t, tenant, 'ann').post(url, payload);
      expectProblem(refused, 400, 'validation_failed');
      expect(refused.json<{ errors: { path: string }[] }>().errors.map((error) => error.path)).toContain(
        '/body/text',
      );
    }
    const history = await asUser(t, tenant, 'bob').get(`/v1/conversations/${conversationId}/messages`);
    expect(history.json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it("refuses another user's upload, and a file of another tenant, without sending anything", async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const bobs = (await uploadFile(t, tenant, 'bob', 'b.txt', Buffer.from('bob'))).json<AttachmentBody>();
    const other = await createTenantWithUsers(t, 'ann');
    const foreign = (await uploadFile(t, other, 'ann', 'f.txt', Buffer.from('f'))).json<AttachmentBody>();
    for (const id of [bobs.id, foreign.id]) {
      const response = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
        text: 'mine?',
        attachment_ids: [id],
      });
      expectProblem(response, 400, 'validation_failed');
    }
    const history = await asUser(t, tenant, 'ann').get(`/v1/conversations/${conversationId}/messages`);
    expect(history.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it('tells the members when a sent image is ready, and its message then carries the thumbnails', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const since = (await asUser(t, tenant, 'bob').get('/v1/sync')).json<{ next_cursor: string }>()
      .next_cursor;
    const uploaded = (
      await uploadFile(t, tenant, 'ann', 'photo.png', await image(600, 300))
    ).json<AttachmentBody>();
    const sent = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'photo',
      attachment_ids: [uploaded.id],
    });
    expect(sent.statusCode, sent.body).toBe(201);
    await waitForStatus(tenant, 'bob', uploaded.id, 'ready');
    const history = await asUser(t, tenant, 'bob').get(`/v1/conversations/${conversationId}/messages`);
    const [message] = history.json<{ data: { attachments: AttachmentBody[] }[] }>().data;
    expect(message?.attachments[0]).toMatchObject({ status: 'ready', width: 600, height: 300 });
    expect(message?.attachments[0]?.thumbnails.map((thumbnail) => thumbnail.width)).toEqual([256, 600]);
    const sync = await asUser(t, tenant, 'bob').get(`/v1/sync?since=${encodeURIComponent(since)}`);
    const events = sync.json<{ events: { type: string; data: { attachment?: AttachmentBody } }[] }>().events;
    const updated = events.find((event) => event.type === 'attachment.updated');
    expect(updated?.data.attachment).toMatchObject({ id: uploaded.id, status: 'ready' });
  });
});

describe('removal', () => {
  it("removes a message's files with it, their names from the log, and gives their bytes back", async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const since = (await asUser(t, tenant, 'bob').get('/v1/sync')).json<{ next_cursor: string }>()
      .next_cursor;
    const uploaded = (
      await uploadFile(t, tenant, 'ann', 'secret-merger-plan.txt', Buffer.from('x'.repeat(500)))
    ).json<AttachmentBody>();
    const sent = await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'gone soon',
      attachment_ids: [uploaded.id],
    });
    const messageId = sent.json<{ id: string }>().id;
    expect(await keysOf(tenant)).toHaveLength(1);
    expect((await asUser(t, tenant, 'ann').delete(`/v1/messages/${messageId}`)).statusCode).toBe(204);
    expectProblem(await asUser(t, tenant, 'ann').get(`/v1/attachments/${uploaded.id}`), 404, 'not_found');
    expect((await fetchLink(uploaded.url)).statusCode).toBe(404);
    const message = await asUser(t, tenant, 'ann').get(`/v1/messages/${messageId}`);
    expect(message.json<{ attachments: unknown[] }>().attachments).toEqual([]);
    // The log's earlier events of the message no longer name the file.
    const sync = await asUser(t, tenant, 'bob').get(`/v1/sync?since=${encodeURIComponent(since)}`);
    expect(sync.body).toContain(messageId);
    expect(sync.body).not.toContain('secret-merger-plan');
    await vi.waitFor(async () => expect(await keysOf(tenant)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
    const usage = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${tenant.id}/usage`,
      headers: bearer(t.adminToken),
    });
    expect(usage.json()).toMatchObject({ storage_bytes: 0, attachments: 0 });
  });

  it('removes an upload its uploader deletes, one never sent after a day, and an erased user’s', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const deleted = (await uploadFile(t, tenant, 'ann', 'd.txt', Buffer.from('d'))).json<AttachmentBody>();
    const stale = (await uploadFile(t, tenant, 'ann', 's.txt', Buffer.from('s'))).json<AttachmentBody>();
    const fresh = (await uploadFile(t, tenant, 'ann', 'f.txt', Buffer.from('f'))).json<AttachmentBody>();
    const bobs = (await uploadFile(t, tenant, 'bob', 'b.txt', Buffer.from('b'))).json<AttachmentBody>();
    expect((await asUser(t, tenant, 'ann').delete(`/v1/attachments/${deleted.id}`)).statusCode).toBe(204);
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(
        sql`UPDATE attachments SET created_at = now() - interval '25 hours' WHERE id = ${stale.id}`,
      ),
    );
    expect(await purgeUnsentAttachments(t.database.db.orm, 1000)).toBeGreaterThanOrEqual(1);
    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/bob',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(erased.statusCode, erased.body).toBe(204);
    await vi.waitFor(async () => expect(await keysOf(tenant)).toEqual([`${tenant.id}/${fresh.id}/upload`]), {
      timeout: 10_000,
      interval: 100,
    });
    for (const gone of [deleted, stale, bobs]) expect((await fetchLink(gone.url)).statusCode).toBe(404);
  });

  it("removes a deleted tenant's bytes after the tenant is gone", async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    await putUser(t, tenant, 'bob');
    const conversationId = await groupOf(tenant, 'ann', 'bob');
    const sentFile = (await uploadFile(t, tenant, 'ann', 'a.txt', Buffer.from('a'))).json<AttachmentBody>();
    await asUser(t, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
      text: 'a',
      attachment_ids: [sentFile.id],
    });
    await uploadFile(t, tenant, 'ann', 'b.txt', Buffer.from('b'));
    expect(await keysOf(tenant)).toHaveLength(2);
    const deleted = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
    });
    expect(deleted.statusCode, deleted.body).toBe(204);
    await vi.waitFor(async () => expect(await keysOf(tenant)).toEqual([]), {
      timeout: 10_000,
      interval: 100,
    });
  });
});

describe('links', () => {
  it('answer 403 to a link that is not ours and 410 to an expired one', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const uploaded = (
      await uploadFile(t, tenant, 'ann', 'l.txt', Buffer.from('link'))
    ).json<AttachmentBody>();
    const token = uploaded.url.split('/').at(-1) ?? '';
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expectProblem(await fetchLink(`/v1/files/${tampered}`), 403, 'forbidden');
    expectProblem(await fetchLink('/v1/files/garbage'), 403, 'forbidden');
    const expired = signFileLink(fileLinkKey(t.serverKey), {
      tenantId: tenant.id,
      attachmentId: uploaded.id,
      rendition: 'original',
      expiresAt: new Date(Date.now() - 1000),
    });
    expectProblem(await fetchLink(expired), 410, 'gone');
    // A link signed for one object never opens another: the thumbnail of a text file does not exist.
    const otherRendition = signFileLink(fileLinkKey(t.serverKey), {
      tenantId: tenant.id,
      attachmentId: uploaded.id,
      rendition: 'thumb256',
      expiresAt: new Date(Date.now() + 60_000),
    });
    expectProblem(await fetchLink(otherRendition), 404, 'not_found');
  });
});

/** CRC-32 (IEEE), for the PNG chunk the pixel-bomb test rewrites. */
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('removal when storage fails', () => {
  it('keeps a removal queued, retrying, and shows it to operators, until storage confirms', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'parley-attachments-failing-'));
    const disk = new LocalDiskStorage(root);
    let isStorageDown = true;
    // The disk, except that removing fails while it is "down".
    const storage: ObjectStorage = {
      kind: 'disk',
      put: (key, body, options) => disk.put(key, body, options),
      get: (key, range) => disk.get(key, range),
      stat: (key) => disk.stat(key),
      list: (prefix) => disk.list(prefix),
      resumable: () => disk.resumable(),
      delete: async (key) => {
        if (isStorageDown) throw new Error('storage unreachable');
        await disk.delete(key);
      },
    };
    const other = await buildTestApp(await createTestDatabase(), {
      attachments: { storage },
      backgroundWork: { sendEveryMs: 100 },
    });
    try {
      const tenant = await createTenantWithUsers(other, 'ann');
      const uploaded = (
        await uploadFile(other, tenant, 'ann', 'keep.txt', Buffer.from('keep me'))
      ).json<AttachmentBody>();
      expect((await asUser(other, tenant, 'ann').delete(`/v1/attachments/${uploaded.id}`)).statusCode).toBe(
        204,
      );
      const stats = await vi.waitFor(
        async () => {
          const rows = await backgroundWorkStats(other.database.db.orm);
          const retrying = rows.find((row) => row.kind === 'storage_removal' && row.state === 'retrying');
          if (!retrying) throw new Error('not retrying yet');
          return retrying;
        },
        { timeout: 10_000, interval: 100 },
      );
      expect(stats.items).toBe(1);
      expect(await disk.stat(`${tenant.id}/${uploaded.id}/upload`)).toEqual({ size: 7 });
      const metrics = await other.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(
        /parley_background_work_items\{kind="storage_removal",state="retrying"\} 1/,
      );
      // Storage back: the next attempt (made due now rather than in a minute) removes it.
      isStorageDown = false;
      await inTenant(other.database.db.orm, tenant.id, (scope) =>
        scope.tx.execute(sql`UPDATE storage_removals SET next_attempt_at = now()`),
      );
      await vi.waitFor(
        async () => expect(await disk.stat(`${tenant.id}/${uploaded.id}/upload`)).toBeUndefined(),
        {
          timeout: 10_000,
          interval: 100,
        },
      );
      await vi.waitFor(
        async () =>
          expect((await backgroundWorkStats(other.database.db.orm)).map((row) => row.kind)).not.toContain(
            'storage_removal',
          ),
        { timeout: 10_000, interval: 100 },
      );
    } finally {
      await other.app.close();
      await other.database.drop();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('on S3 storage', () => {
  it('stores uploads and thumbnails in the bucket, links redirect to presigned GETs, removals empty it', async () => {
    const s3 = await startS3Server();
    const storage = new S3Storage({ ...s3.options, prefix: 'parley-test' });
    const other = await buildTestApp(await createTestDatabase(), {
      attachments: { storage },
      backgroundWork: { sendEveryMs: 100 },
    });
    const bucketKeys = async () => {
      const keys: string[] = [];
      for await (const object of storage.list('')) keys.push(object.key);
      return keys.sort();
    };
    try {
      const tenant = await createTenantWithUsers(other, 'ann', 'bob');
      const conversationId = (
        await asUser(other, tenant, 'ann').post('/v1/conversations', { type: 'group', members: ['bob'] })
      ).json<{ id: string }>().id;
      const data = await image(640, 480, 'jpeg', true);
      const uploaded = await uploadFile(other, tenant, 'ann', 'photo.jpg', data);
      expect(uploaded.statusCode, uploaded.body).toBe(201);
      const id = uploaded.json<AttachmentBody>().id;
      const sent = await asUser(other, tenant, 'ann').post(`/v1/conversations/${conversationId}/messages`, {
        text: 'from the bucket',
        attachment_ids: [id],
      });
      expect(sent.statusCode, sent.body).toBe(201);
      const ready = await vi.waitFor(
        async () => {
          const body = (
            await asUser(other, tenant, 'bob').get(`/v1/attachments/${id}`)
          ).json<AttachmentBody>();
          if (body.status !== 'ready') throw new Error(`still ${body.status}`);
          return body;
        },
        { timeout: 20_000, interval: 100 },
      );
      // The upload, with its EXIF, is removed once replaced.
      await vi.waitFor(
        async () =>
          expect(await bucketKeys()).toEqual(
            ['original-1', 'thumb1024-1', 'thumb256-1'].map((what) => `${tenant.id}/${id}/${what}`),
          ),
        { timeout: 10_000, interval: 100 },
      );
      // The link answers with a presigned GET of the bucket, which serves the metadata-free original.
      const link = await other.app.inject({ method: 'GET', url: ready.url });
      expect(link.statusCode).toBe(302);
      const presigned = await fetch(String(link.headers.location));
      expect(presigned.status).toBe(200);
      expect(presigned.headers.get('content-type')).toBe('image/jpeg');
      expect(presigned.headers.get('content-disposition')).toMatch(/^attachment; filename="photo.jpg"/);
      const bytes = Buffer.from(await presigned.arrayBuffer());
      expect(sha256(bytes)).toBe(ready.sha256);
      expect(bytes.includes(Buffer.from('parley-test-owner'))).toBe(false);

      const messageId = sent.json<{ id: string }>().id;
      expect((await asUser(other, tenant, 'ann').delete(`/v1/messages/${messageId}`)).statusCode).toBe(204);
      await vi.waitFor(async () => expect(await bucketKeys()).toEqual([]), {
        timeout: 10_000,
        interval: 100,
      });
    } finally {
      await other.app.close();
      await other.database.drop();
      await storage.close();
      await s3.close();
    }
  });
});

describe('parley attachments gc', () => {
  it('removes objects no attachment names, and leaves uploads and processing under way alone', async () => {
    const tenant = await createTenantWithUsers(t, 'ann');
    const storage = new LocalDiskStorage(storageRoot);
    const kept = (await uploadFile(t, tenant, 'ann', 'kept.txt', Buffer.from('kept'))).json<AttachmentBody>();
    const put = (key: string) => storage.put(key, Readable.from([Buffer.from(key)]), { maxBytes: 1000 });
    // A process died after storing an upload's bytes, before recording it; another mid-processing.
    const lost = `${tenant.id}/${randomUUID()}/upload`;
    const strayRendition = `${tenant.id}/${kept.id}/thumb256-1`;
    // An upload under way: its reservation (under the attachment's id) is live, its row not written yet.
    const uploading = randomUUID();
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`INSERT INTO storage_reservations (tenant_id, id, bytes, expires_at)
                           VALUES (${tenant.id}, ${uploading}, 10, now() + interval '1 hour')`),
    );
    const inFlight = `${tenant.id}/${uploading}/upload`;
    const foreign = 'backups/not-parleys.tar';
    for (const key of [lost, strayRendition, inFlight, foreign]) await put(key);

    const dry = await collectStorageGarbage(t.database.db.orm, storage, { dryRun: true });
    const mine = (report: GcReport) =>
      report.orphans
        .map((orphan) => orphan.key)
        .filter((key) => key.startsWith(tenant.id))
        .sort();
    expect(mine(dry)).toEqual([lost, strayRendition].sort());
    expect(dry.foreign).toBeGreaterThanOrEqual(1);
    expect(await storage.stat(lost)).toBeDefined();

    // A temporary file of a write a crash cut short, two days ago, and one of a write going on now.
    await mkdir(path.join(storageRoot, '.tmp'), { recursive: true });
    const crashed = path.join(storageRoot, '.tmp', 'crashed-write');
    const current = path.join(storageRoot, '.tmp', 'current-write');
    await writeFile(crashed, 'half');
    await writeFile(current, 'half');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await utimes(crashed, twoDaysAgo, twoDaysAgo);

    const run = await collectStorageGarbage(t.database.db.orm, storage, { dryRun: false });
    expect(run.staleTemp).toBe(1);
    expect(existsSync(crashed)).toBe(false);
    expect(existsSync(current)).toBe(true);
    await rm(current);
    expect(mine(run)).toEqual([lost, strayRendition].sort());
    expect(await storage.stat(lost)).toBeUndefined();
    expect(await storage.stat(strayRendition)).toBeUndefined();
    expect(await storage.stat(inFlight)).toBeDefined();
    expect(await storage.stat(foreign)).toBeDefined();
    expect((await fetchLink(kept.url)).body).toBe('kept');
    await storage.delete(foreign);
    await storage.delete(inFlight);
  });
});
