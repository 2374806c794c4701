import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_ATTACHMENT_LIMITS } from '../src/config.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase | undefined;
afterAll(async () => database?.drop());

it('answers a bug with 500 internal that says nothing but the request id, and logs the error with that id', async () => {
  database = await createTestDatabase();
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const app = await buildApp({
    db: database.db,
    serverKey: 'k'.repeat(43),
    adminTokenHash: createHash('sha256').update('operator-token-for-this-test').digest('hex'),
    logger: pino({ level: 'info' }, sink),
    bus: createLocalBus(),
    eventRetentionDays: 30,
    // Never written to: nothing here uploads.
    attachments: {
      storage: new LocalDiskStorage(path.join(tmpdir(), 'parley-unused-storage')),
      limits: DEFAULT_ATTACHMENT_LIMITS,
    },
  });
  // A route with a bug, standing in for any failure the code did not expect.
  app.get('/bug', { config: { auth: 'none' } }, () => {
    throw new Error('relation "secret_table" does not exist at character 42');
  });
  await app.ready();
  try {
    const response = await app.inject({
      method: 'GET',
      url: '/bug',
      headers: { 'x-request-id': 'req-bug-1' },
    });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['x-request-id']).toBe('req-bug-1');
    const problem = response.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('internal');
    expect(problem.detail).toBe('internal error; quote request id req-bug-1 when reporting it');
    expect(response.body).not.toContain('secret_table');
    const logged = lines.find((line) => line.msg === 'unhandled error');
    expect(logged?.reqId).toBe('req-bug-1');
    expect(JSON.stringify(logged?.err)).toContain('secret_table');
  } finally {
    await app.close();
  }
});
