import http from 'node:http';
import net from 'node:net';
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { purgeEvents } from '../src/modules/events/events.repository.ts';
import { listenForSockets, useTestApp } from './helpers/app.ts';
import {
  actingAs,
  createTenant,
  createTenantWithUsers,
  mintUserToken,
  putUser,
} from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

// A small slow-consumer bound, so a socket that stops reading passes it quickly; the heartbeat keeps its
// 30 s default so it cannot close that socket first.
const t = useTestApp(
  { allowedOrigins: ['https://app.example.com'], wsMaxConnectionsPerUser: 2, wsMaxFramesPerSecond: 5 },
  { maxBufferedBytes: 64 * 1024, safetyPollMs: 2000, typingExpiresMs: 6000, offlineAfterMs: 30_000 },
);
let base = '';

beforeAll(async () => {
  base = await listenForSockets(t);
});

async function userToken(userId = 'bob') {
  const tenant = await createTenant(t);
  await putUser(t, tenant, userId);
  return { tenant, token: await mintUserToken(t, tenant, userId) };
}

/** An upgrade request that the gateway refuses: its HTTP status and problem document. */
function refusedUpgrade(path: string, headers: Record<string, string> = {}) {
  return new Promise<{
    status: number;
    type: string;
    problem: { code: string; errors?: { path: string }[] };
  }>((resolve, reject) => {
    const request = http.request(`${base.replace(/^ws/, 'http')}${path}`, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    request.once('upgrade', () => reject(new Error(`${path} was upgraded`)));
    request.once('error', reject);
    request.once('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          type: response.headers['content-type'] ?? '',
          problem: JSON.parse(body) as { code: string; errors?: { path: string }[] },
        }),
      );
    });
    request.end();
  });
}

describe('gateway limits', () => {
  it('refuses a bad upgrade over HTTP with a problem document, and stays up', async () => {
    const { token } = await userToken();
    const cases: [string, Record<string, string>, number, string, string | undefined][] = [
      [`/v1/ws?access_token=${token}&extra=1`, {}, 400, 'validation_failed', '/querystring/extra'],
      ['/v1/ws?cursor=a&cursor=b', {}, 400, 'validation_failed', '/querystring/cursor'],
      [`/v1/ws?access_token=${'x'.repeat(4097)}`, {}, 400, 'validation_failed', '/querystring/access_token'],
      ['/v1/elsewhere', {}, 404, 'not_found', undefined],
      [`/v1/ws?access_token=${token}`, { origin: 'https://evil.example' }, 403, 'forbidden', undefined],
      [
        `/v1/ws?access_token=${token}`,
        { authorization: `Bearer ${token}` },
        400,
        'validation_failed',
        '/querystring/access_token',
      ],
    ];
    for (const [path, headers, status, code, field] of cases) {
      const refused = await refusedUpgrade(path, headers);
      expect(refused, path).toMatchObject({ status, type: 'application/problem+json', problem: { code } });
      if (field !== undefined) expect(refused.problem.errors?.map((error) => error.path)).toEqual([field]);
    }
    // A request target that is no URL is refused, and does not end the process.
    const { port } = new URL(base.replace(/^ws/, 'http'));
    const answer = await new Promise<string>((resolve, reject) => {
      const raw = net.connect(Number(port), '127.0.0.1', () =>
        raw.write(
          'GET http://[ HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
      );
      let received = '';
      raw.setEncoding('utf8');
      raw.on('data', (chunk: string) => (received += chunk));
      raw.on('close', () => resolve(received));
      raw.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    // Without an upgrade, /v1/ws is no HTTP route.
    expect((await t.app.inject({ method: 'GET', url: '/v1/ws' })).statusCode).toBe(404);
    const socket = await TestSocket.open(`${base}/v1/ws?access_token=${token}`);
    await socket.waitFor((frame) => frame.type === 'ready');
    await socket.close();
  });

  it('refuses browser origins that are not allowed, and accepts allowed ones and non-browser clients', async () => {
    const { token } = await userToken();
    await expect(
      TestSocket.open(`${base}/v1/ws?access_token=${token}`, { origin: 'https://evil.example' }),
    ).rejects.toThrow(/HTTP 403/);
    const allowed = await TestSocket.open(`${base}/v1/ws?access_token=${token}`, {
      origin: 'https://app.example.com',
    });
    await allowed.waitFor((frame) => frame.type === 'ready');
    await allowed.close();
  });

  it('closes a user’s socket past the per-user limit with 4429', async () => {
    const { token } = await userToken();
    const open = async () => TestSocket.open(`${base}/v1/ws?access_token=${token}`);
    const first = await open();
    const second = await open();
    await first.waitFor((frame) => frame.type === 'ready');
    await second.waitFor((frame) => frame.type === 'ready');
    const third = await open();
    expect(await third.waitForClose()).toBe(4429);
    await first.close();
    await second.close();
  });

  it('answers frames over the rate with rate_limited error frames, and keeps the socket', async () => {
    const { token } = await userToken();
    const socket = await TestSocket.open(`${base}/v1/ws?access_token=${token}`);
    await socket.waitFor((frame) => frame.type === 'ready');
    for (let index = 0; index < 30; index++) socket.send({ type: 'ping', ref: `p${index}` });
    await socket.waitFor((frame) => frame.code === 'rate_limited');
    const pongs = socket.frames.filter((frame) => frame.type === 'pong').length;
    // A burst of twice the rate passes; the rest is refused.
    expect(pongs).toBeGreaterThanOrEqual(10);
    expect(pongs).toBeLessThan(30);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    socket.send({ type: 'ping', ref: 'later' });
    await socket.waitFor((frame) => frame.ref === 'later' && frame.type === 'pong');
    await socket.close();
  });
});

describe('slow consumers', () => {
  it('closes a socket that does not read its events with 4008 once its buffer passes the bound', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob');
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(tenant, 'alice'),
      payload: { type: 'group', members: ['bob'] },
    });
    const conversationId = created.json<{ id: string }>().id;
    const reader = await TestSocket.open(
      `${base}/v1/ws?access_token=${await mintUserToken(t, tenant, 'bob')}`,
    );
    await reader.waitFor((frame) => frame.type === 'ready');
    (reader.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // 3 bytes per character: about 30 KB an event, enough to fill the loopback buffers and then ws's own.
    const text = '€'.repeat(10_000);
    for (let index = 0; index < 1500 && reader.closeCode === null; index++) {
      await t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/messages`,
        headers: actingAs(tenant, 'alice'),
        payload: { text },
      });
    }
    (reader.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await reader.waitForClose(5000)).toBe(4008);
  }, 60_000);
});

describe('event retention', () => {
  it('purges events older than the retention, for every tenant', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'alice');
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(tenant, 'alice'),
      payload: { type: 'group' },
    });
    expect(created.statusCode).toBe(201);
    const count = () =>
      inTenant(
        t.database.db.orm,
        tenant.id,
        async (scope) =>
          rowsOf<{ n: number }>(await scope.tx.execute(sql`SELECT count(*)::int AS n FROM events`))[0]?.n ??
          0,
      );
    expect(await count()).toBe(1);
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`UPDATE events SET created_at = now() - interval '31 days'`),
    );
    expect(await purgeEvents(t.database.db.orm, 30)).toBeGreaterThanOrEqual(1);
    expect(await count()).toBe(0);
  });
});
