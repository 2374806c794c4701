import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionLimits } from '../src/realtime/connection-limits.ts';
import type { GatewayLimits } from '../src/realtime/gateway.ts';
import { closeLimitsRedis, createLimitsRedis } from '../src/redis.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { createTenant, mintUserToken, putUser, type TestTenant } from './helpers/factories.ts';
import { describeWithRedis, REDIS_URL } from './helpers/redis.ts';
import { TestSocket } from './helpers/ws-client.ts';

const LIMITS: GatewayLimits = {
  allowedOrigins: [],
  wsMaxConnectionsPerUser: 2,
  wsMaxConnectionsPerTenant: 3,
  wsMaxConnectionsPerProcess: 8,
  wsMaxFramesPerSecond: 20,
};

/** Opens an authenticated socket and waits for `ready`. */
async function connected(base: string, token: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${base}/v1/ws?access_token=${token}`);
  await socket.waitFor((frame) => frame.type === 'ready');
  return socket;
}

/** Opens a socket that the server closes after authenticating it; its close code and reason. */
async function refused(base: string, token: string): Promise<{ code: number; reason: string }> {
  const socket = await TestSocket.open(`${base}/v1/ws?access_token=${token}`);
  const code = await socket.waitForClose();
  return { code, reason: socket.closeReason };
}

/** Tokens of users of a tenant, keyed by user id. */
async function tokensOf(
  t: TestApp,
  tenant: TestTenant,
  ...userIds: string[]
): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const userId of userIds) {
    await putUser(t, tenant, userId);
    tokens[userId] = await mintUserToken(t, tenant, userId);
  }
  return tokens;
}

describe('socket limits, in one process', () => {
  let database: TestDatabase;
  let t: TestApp;
  let base = '';
  beforeAll(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, { realtime: LIMITS });
    base = await listenForSockets(t);
  });
  afterAll(async () => {
    await t.app.close();
    await database.drop();
  });

  it('answers the upgrade past the per-process limit with 429 and Retry-After, before any handshake', async () => {
    // Sockets count from their upgrade, authenticated or not.
    const open = await Promise.all(
      Array.from({ length: LIMITS.wsMaxConnectionsPerProcess ?? 0 }, () => TestSocket.open(`${base}/v1/ws`)),
    );
    const answer = await new Promise<{ status: number; retryAfter: string; body: string }>(
      (resolve, reject) => {
        const request = http.request(`${base.replace(/^ws/, 'http')}/v1/ws`, {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        request.once('upgrade', () => reject(new Error('upgraded past the process limit')));
        request.once('error', reject);
        request.once('response', (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              retryAfter: String(response.headers['retry-after']),
              body,
            }),
          );
        });
        request.end();
      },
    );
    expect(answer.status).toBe(429);
    expect(answer.retryAfter).toBe('5');
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'rate_limited', status: 429 });
    // One closes: the next one is let in.
    await open[0]?.close();
    const next = await TestSocket.open(`${base}/v1/ws`);
    await Promise.all([...open.slice(1), next].map((socket) => socket.close()));
  });

  it('closes a socket past its user’s limit with 4429, saying so', async () => {
    const tenant = await createTenant(t);
    const { alice = '' } = await tokensOf(t, tenant, 'alice');
    const first = await connected(base, alice);
    const second = await connected(base, alice);
    expect(await refused(base, alice)).toEqual({ code: 4429, reason: 'too many connections for this user' });
    // Closing one frees its place.
    await first.close();
    const third = await connected(base, alice);
    await Promise.all([second.close(), third.close()]);
  });

  it('closes a socket past its tenant’s limit with 4429, and leaves other tenants alone', async () => {
    const tenant = await createTenant(t);
    const tokens = await tokensOf(t, tenant, 'alice', 'bob', 'carol');
    const sockets = [
      await connected(base, tokens.alice ?? ''),
      await connected(base, tokens.alice ?? ''),
      await connected(base, tokens.bob ?? ''),
    ];
    // Carol has no socket, but her tenant holds its three.
    expect(await refused(base, tokens.carol ?? '')).toEqual({
      code: 4429,
      reason: 'too many connections for this tenant',
    });
    const other = await createTenant(t);
    const { carol = '' } = await tokensOf(t, other, 'carol');
    const elsewhere = await connected(base, carol);
    await sockets[2]?.close();
    const carolNow = await connected(base, tokens.carol ?? '');
    await Promise.all([...sockets.slice(0, 2), elsewhere, carolNow].map((socket) => socket.close()));
  });
});

describe('socket limits while Redis is unreachable', () => {
  it("fall back to this process's own counts", async () => {
    // Nothing listens on port 1: every command fails at once (no offline queue).
    const redis = createLimitsRedis('redis://127.0.0.1:1', () => undefined);
    const limits = new ConnectionLimits(
      { perUser: 1, perTenant: 100 },
      { redis, processId: 'alone', log: pino({ level: 'silent' }) },
    );
    try {
      const tenantId = randomUUID();
      const first = await limits.acquire(tenantId, 'alice');
      expect(typeof first).toBe('object');
      expect(await limits.acquire(tenantId, 'alice')).toBe('user');
      if (typeof first === 'object') first.release();
      expect(typeof (await limits.acquire(tenantId, 'alice'))).toBe('object');
    } finally {
      limits.close();
      await closeLimitsRedis(redis);
    }
  });
});

describeWithRedis('socket limits, shared through Redis', () => {
  let database: TestDatabase;
  const apps: TestApp[] = [];
  const bases: string[] = [];
  const clients: Redis[] = [];
  const newRedis = async () => {
    const redis = createLimitsRedis(REDIS_URL ?? '', () => undefined);
    await new Promise((resolve) => redis.once('ready', resolve));
    clients.push(redis);
    return redis;
  };
  beforeAll(async () => {
    database = await createTestDatabase();
    // Two processes of one deployment: one database, one server key, each its own Redis connection.
    for (let index = 0; index < 2; index++) {
      const app = await buildTestApp(database, {
        realtime: LIMITS,
        limitsRedis: await newRedis(),
        ...(apps[0] === undefined ? {} : { adminToken: apps[0].adminToken, serverKey: apps[0].serverKey }),
      });
      apps.push(app);
      bases.push(await listenForSockets(app));
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.app.close();
    for (const redis of clients) await closeLimitsRedis(redis);
    await database.drop();
  });

  it('counts a user’s and a tenant’s sockets over every process', async () => {
    const [one = '', two = ''] = bases;
    const t = apps[0] as TestApp;
    const tenant = await createTenant(t);
    const tokens = await tokensOf(t, tenant, 'alice', 'bob', 'carol');
    // One socket of alice on each process: each process alone would let a second in.
    const aliceOnOne = await connected(one, tokens.alice ?? '');
    const aliceOnTwo = await connected(two, tokens.alice ?? '');
    expect(await refused(one, tokens.alice ?? '')).toEqual({
      code: 4429,
      reason: 'too many connections for this user',
    });
    const bobOnTwo = await connected(two, tokens.bob ?? '');
    expect(await refused(one, tokens.carol ?? '')).toEqual({
      code: 4429,
      reason: 'too many connections for this tenant',
    });
    // A socket closed on one process frees its place for the other.
    await aliceOnTwo.close();
    const carolOnOne = await connected(one, tokens.carol ?? '');
    await Promise.all([aliceOnOne, bobOnTwo, carolOnOne].map((socket) => socket.close()));
  });

  it('forgets the sockets of a process that stopped renewing them (killed), and keeps a live one’s', async () => {
    const log = pino({ level: 'silent' });
    const timings = { ttlMs: 600, renewEveryMs: 150 };
    const settings = { perUser: 2, perTenant: 100 };
    const tenantId = randomUUID();
    const limitsOf = async (processId: string) =>
      new ConnectionLimits(settings, { redis: await newRedis(), processId, log, timings });
    const killed = await limitsOf('killed');
    const live = await limitsOf('live');
    const other = await limitsOf('other');
    const isLease = (admitted: unknown) => typeof admitted === 'object';
    try {
      // Alice has a socket on the killed process and one on the live one; bob two on the live one.
      expect(isLease(await killed.acquire(tenantId, 'alice'))).toBe(true);
      expect(isLease(await live.acquire(tenantId, 'alice'))).toBe(true);
      expect(isLease(await live.acquire(tenantId, 'bob'))).toBe(true);
      expect(isLease(await live.acquire(tenantId, 'bob'))).toBe(true);
      expect(await other.acquire(tenantId, 'alice')).toBe('user');
      // "Killed": it stops renewing and never releases. The live one goes on renewing, past the TTL.
      killed.close();
      await new Promise((resolve) => setTimeout(resolve, 1200));
      // Alice's set lives on (the live process renews it), but the killed process's entry in it expired.
      expect(isLease(await other.acquire(tenantId, 'alice'))).toBe(true);
      expect(await other.acquire(tenantId, 'alice')).toBe('user');
      expect(await other.acquire(tenantId, 'bob')).toBe('user');
    } finally {
      for (const limits of [killed, live, other]) limits.close();
    }
  });
});
