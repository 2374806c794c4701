import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimits } from '../src/config.ts';
import { closeLimitsRedis, createLimitsRedis } from '../src/redis.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import {
  actingAs,
  bearer,
  createTenant,
  expectProblem,
  mintUserToken,
  putUser,
  type TestTenant,
} from './helpers/factories.ts';
import { uploadFile } from './helpers/uploads.ts';
import { describeWithRedis, REDIS_URL } from './helpers/redis.ts';

// Tiny budgets, so each is used up in a few requests. Each test has tenants of its own, and so counters of
// its own. The key's writes leave room for the setup (putUser, mintUserToken).
const LIMITS: RateLimits = {
  windowMs: 60_000,
  user: { reads: 3, sends: 2, writes: 2, uploads: 2 },
  key: { reads: 3, sends: 2, writes: 6, uploads: 2 },
};

const get = (t: TestApp, url: string, headers: Record<string, string>) =>
  t.app.inject({ method: 'GET', url, headers });

/** A tenant with users alice and bob, and a group conversation of theirs made by the backend as alice. */
async function tenantWithConversation(t: TestApp): Promise<{ tenant: TestTenant; conversationId: string }> {
  const tenant = await createTenant(t);
  await putUser(t, tenant, 'alice');
  await putUser(t, tenant, 'bob');
  // Made as bob, so none of alice's budgets is spent on it.
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: actingAs(tenant, 'bob'),
    payload: { type: 'group', members: ['alice'] },
  });
  expect(created.statusCode, created.body).toBe(201);
  return { tenant, conversationId: created.json<{ id: string }>().id };
}

/** Sends requests until one is refused; returns the statuses. */
async function spend(send: () => Promise<{ statusCode: number }>, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let index = 0; index < times; index++) statuses.push((await send()).statusCode);
  return statuses;
}

describe('HTTP rate limits, in one process', () => {
  let database: TestDatabase;
  let t: TestApp;
  beforeAll(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, { rateLimits: LIMITS });
  });
  afterAll(async () => {
    await t.app.close();
    await database.drop();
  });

  it('counts down in RateLimit-* headers, then answers 429 rate_limited with Retry-After', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'alice');
    const token = await mintUserToken(t, tenant, 'alice');
    for (const remaining of [2, 1, 0]) {
      const response = await get(t, '/v1/me', bearer(token));
      expect(response.statusCode).toBe(200);
      expect(response.headers['ratelimit-limit']).toBe('3');
      expect(response.headers['ratelimit-remaining']).toBe(String(remaining));
      const reset = Number(response.headers['ratelimit-reset']);
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
    }
    const refused = await get(t, '/v1/me', bearer(token));
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.json<{ detail: string }>().detail).toMatch(/at most 3 reads per 60 s for this user/);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers['ratelimit-limit']).toBe('3');
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(refused.headers['ratelimit-reset']).toBe(String(retryAfter));
    expect(refused.headers['x-request-id']).toBeTruthy();
  });

  it('keeps separate budgets: used-up reads do not stop sends, used-up sends do not stop writes', async () => {
    const { tenant, conversationId } = await tenantWithConversation(t);
    const asAlice = actingAs(tenant, 'alice');
    const send = () =>
      t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/messages`,
        headers: asAlice,
        payload: { text: 'hi' },
      });
    expect(await spend(() => get(t, '/v1/me', asAlice), 4)).toEqual([200, 200, 200, 429]);
    expect(await spend(send, 3)).toEqual([201, 201, 429]);
    // Direct messages are sends too: the sends budget is spent.
    const direct = await t.app.inject({
      method: 'POST',
      url: '/v1/direct-messages',
      headers: asAlice,
      payload: { to: 'bob', text: 'hi' },
    });
    expectProblem(direct, 429, 'rate_limited');
    expect(direct.json<{ detail: string }>().detail).toMatch(/sends/);
    const markRead = () =>
      t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/read`,
        headers: asAlice,
        payload: {},
      });
    const writes = await spend(markRead, 3);
    expect(writes.slice(0, 2).every((status) => status < 300)).toBe(true);
    expect(writes[2]).toBe(429);
    // And bob, in the same conversation, is not limited by any of alice's budgets.
    const bobSends = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${conversationId}/messages`,
      headers: actingAs(tenant, 'bob'),
      payload: { text: 'still here' },
    });
    expect(bobSends.statusCode).toBe(201);
  });

  it('counts uploads apart: used-up writes do not stop uploads, used-up uploads do not stop writes', async () => {
    const { tenant, conversationId } = await tenantWithConversation(t);
    const upload = () => uploadFile(t, tenant, 'alice', 'a.txt', Buffer.from('a'));
    const markRead = () =>
      t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/read`,
        headers: actingAs(tenant, 'alice'),
        payload: {},
      });
    expect((await spend(markRead, 3))[2]).toBe(429);
    expect(await spend(upload, 3)).toEqual([201, 201, 429]);
    const refused = await upload();
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.json<{ detail: string }>().detail).toMatch(/uploads/);
  });

  it('counts per user and per api key, independently', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'alice');
    const aliceToken = await mintUserToken(t, tenant, 'alice');
    // Alice's reads, spent through the backend acting as her...
    expect(await spend(() => get(t, '/v1/me', actingAs(tenant, 'alice')), 4)).toEqual([200, 200, 200, 429]);
    // ...are the same budget as through her own token: it is hers, whatever the credential.
    expectProblem(await get(t, '/v1/me', bearer(aliceToken)), 429, 'rate_limited');
    // Bob's are his own, and the key's own (no X-Parley-User) are the key's.
    expect((await get(t, '/v1/me', actingAs(tenant, 'bob'))).statusCode).toBe(200);
    const asBackend = bearer(tenant.apiKey.secret);
    const keyReads = await spend(() => get(t, '/v1/users/alice', asBackend), 4);
    expect(keyReads).toEqual([200, 200, 200, 429]);
    const refused = await get(t, '/v1/users/alice', asBackend);
    expect(refused.json<{ detail: string }>().detail).toMatch(/for this api key/);
    // The key is out of reads, but a user it acts as is counted as that user: bob still reads.
    expect((await get(t, '/v1/me', actingAs(tenant, 'bob'))).statusCode).toBe(200);
  });

  it("keeps tenants apart: one tenant's flood does not limit another's users or key", async () => {
    const flooding = await createTenant(t);
    const quiet = await createTenant(t);
    for (const tenant of [flooding, quiet]) await putUser(t, tenant, 'alice');
    await spend(() => get(t, '/v1/me', actingAs(flooding, 'alice')), 10);
    await spend(() => get(t, '/v1/users/alice', bearer(flooding.apiKey.secret)), 10);
    expectProblem(await get(t, '/v1/me', actingAs(flooding, 'alice')), 429, 'rate_limited');
    // The same user id in another tenant is another user, and the other tenant's key another key.
    expect((await get(t, '/v1/me', actingAs(quiet, 'alice'))).statusCode).toBe(200);
    expect((await get(t, '/v1/users/alice', bearer(quiet.apiKey.secret))).statusCode).toBe(200);
  });

  it('does not limit the operator or the unauthenticated system routes', async () => {
    for (let index = 0; index < 10; index++) {
      const admin = await get(t, '/v1/admin/tenants', bearer(t.adminToken));
      expect(admin.statusCode).toBe(200);
      expect(admin.headers['ratelimit-limit']).toBeUndefined();
      const health = await get(t, '/healthz', {});
      expect(health.statusCode).toBe(200);
      expect(health.headers['ratelimit-limit']).toBeUndefined();
    }
  });

  it('does not count a budget set to 0', async () => {
    const unlimited = await buildTestApp(database, {
      rateLimits: { ...LIMITS, user: { ...LIMITS.user, reads: 0 } },
      adminToken: t.adminToken,
      serverKey: t.serverKey,
    });
    try {
      const tenant = await createTenant(unlimited);
      const statuses = await spend(() => get(unlimited, '/v1/me', actingAs(tenant, 'alice')), 10);
      expect(statuses.every((status) => status === 200)).toBe(true);
    } finally {
      await unlimited.app.close();
    }
  });
});

describe('HTTP rate limits while Redis is unreachable', () => {
  it('lets requests through, at once, rather than failing them', async () => {
    const database = await createTestDatabase();
    // Nothing listens on port 1: every command fails at once (no offline queue).
    const redis = createLimitsRedis('redis://127.0.0.1:1', () => undefined);
    const t = await buildTestApp(database, { rateLimits: LIMITS, limitsRedis: redis });
    try {
      const tenant = await createTenant(t);
      const statuses = await spend(() => get(t, '/v1/me', actingAs(tenant, 'alice')), 6);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    } finally {
      await t.app.close();
      await closeLimitsRedis(redis);
      await database.drop();
    }
  });
});

describeWithRedis('HTTP rate limits, shared through Redis', () => {
  let database: TestDatabase;
  const apps: TestApp[] = [];
  const clients: Redis[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    // Two processes of one deployment: one database, one server key, each with its own Redis connection.
    for (let index = 0; index < 2; index++) {
      const redis = createLimitsRedis(REDIS_URL ?? '', () => undefined);
      await redis.ping().catch(async () => new Promise((resolve) => redis.once('ready', resolve)));
      clients.push(redis);
      apps.push(
        await buildTestApp(database, {
          rateLimits: LIMITS,
          limitsRedis: redis,
          ...(apps[0] === undefined ? {} : { adminToken: apps[0].adminToken, serverKey: apps[0].serverKey }),
        }),
      );
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.app.close();
    for (const redis of clients) await closeLimitsRedis(redis);
    await database.drop();
  });

  it('counts a caller once over every process: what one spent, the other refuses', async () => {
    const [first, second] = apps as [TestApp, TestApp];
    const tenant = await createTenant(first);
    await putUser(first, tenant, 'alice');
    const asAlice = actingAs(tenant, 'alice');
    expect((await get(first, '/v1/me', asAlice)).statusCode).toBe(200);
    expect((await get(second, '/v1/me', asAlice)).headers['ratelimit-remaining']).toBe('1');
    expect((await get(first, '/v1/me', asAlice)).statusCode).toBe(200);
    expectProblem(await get(second, '/v1/me', asAlice), 429, 'rate_limited');
    expectProblem(await get(first, '/v1/me', asAlice), 429, 'rate_limited');
    // Another user of the tenant is untouched on both.
    expect((await get(second, '/v1/me', actingAs(tenant, 'bob'))).statusCode).toBe(200);
  });
});
