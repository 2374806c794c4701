import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialCache } from '../src/modules/auth/credential-cache.ts';
import { revokeApiKey, type ApiKeyRow } from '../src/modules/tenants/tenants.repository.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { actingAs, bearer, createTenant, expectProblem } from './helpers/factories.ts';

const keyRow = (id: string, tenantId: string): ApiKeyRow => ({
  id,
  tenantId,
  secretHash: 'x',
  createdAt: new Date(),
  revokedAt: null,
});

describe('CredentialCache', () => {
  const clock = { now: 0 };
  const cache = () =>
    new CredentialCache({ apiKeyTtlMs: 1000, userTtlMs: 2000, maxEntries: 3, now: () => clock.now });

  it('trusts a key for its TTL, then asks again', () => {
    const credentials = cache();
    clock.now = 0;
    credentials.rememberLiveApiKey(keyRow('k1', 't1'), credentials.currentGeneration);
    clock.now = 999;
    expect(credentials.liveApiKey('k1')?.tenantId).toBe('t1');
    clock.now = 1000;
    expect(credentials.liveApiKey('k1')).toBeUndefined();
  });

  it('never keeps a revoked key, nor an answer read while something was forgotten', () => {
    const credentials = cache();
    clock.now = 0;
    credentials.rememberLiveApiKey({ ...keyRow('k1', 't1'), revokedAt: new Date() }, 0);
    expect(credentials.liveApiKey('k1')).toBeUndefined();
    const generation = credentials.currentGeneration;
    credentials.forget({ kind: 'api_key_revoked', keyId: 'k1' });
    credentials.rememberLiveApiKey(keyRow('k1', 't1'), generation);
    credentials.rememberActiveUser('t1', 'ann', generation);
    expect(credentials.liveApiKey('k1')).toBeUndefined();
    expect(credentials.isKnownActiveUser('t1', 'ann')).toBe(false);
  });

  it('forgets an erased user, and everything of a deleted tenant', () => {
    const credentials = cache();
    clock.now = 0;
    const generation = credentials.currentGeneration;
    credentials.rememberLiveApiKey(keyRow('k1', 't1'), generation);
    credentials.rememberLiveApiKey(keyRow('k2', 't2'), generation);
    credentials.rememberActiveUser('t1', 'ann', generation);
    credentials.rememberActiveUser('t1', 'bob', generation);
    credentials.forget({ kind: 'user_erased', tenantId: 't1', userId: 'ann' });
    expect(credentials.isKnownActiveUser('t1', 'ann')).toBe(false);
    expect(credentials.isKnownActiveUser('t1', 'bob')).toBe(true);
    credentials.forget({ kind: 'tenant_deleted', tenantId: 't1' });
    expect(credentials.isKnownActiveUser('t1', 'bob')).toBe(false);
    expect(credentials.liveApiKey('k1')).toBeUndefined();
    expect(credentials.liveApiKey('k2')?.tenantId).toBe('t2');
  });

  it('holds at most maxEntries, dropping the oldest', () => {
    const credentials = cache();
    clock.now = 0;
    for (const id of ['k1', 'k2', 'k3', 'k4']) credentials.rememberLiveApiKey(keyRow(id, 't'), 0);
    expect(credentials.liveApiKey('k1')).toBeUndefined();
    expect(['k2', 'k3', 'k4'].map((id) => credentials.liveApiKey(id)?.id)).toEqual(['k2', 'k3', 'k4']);
  });
});

describe('cached credentials across processes', () => {
  // Two apps on one database and one bus: two processes of one deployment.
  let database: TestDatabase;
  let first: TestApp;
  let second: TestApp;
  beforeAll(async () => {
    database = await createTestDatabase();
    const bus = createLocalBus();
    first = await buildTestApp(database, {
      bus,
      credentialCache: { apiKeyTtlMs: 60_000, userTtlMs: 60_000, maxEntries: 1000 },
    });
    second = await buildTestApp(database, {
      bus,
      adminToken: first.adminToken,
      serverKey: first.serverKey,
      credentialCache: { apiKeyTtlMs: 60_000, userTtlMs: 60_000, maxEntries: 1000 },
    });
  });
  afterAll(async () => {
    await first.app.close();
    await second.app.close();
    await database.drop();
  });

  const users = (t: TestApp, secret: string) =>
    t.app.inject({ method: 'GET', url: '/v1/users', headers: bearer(secret) });

  /** Retries until the bus has carried the change (it delivers on a later tick). */
  async function eventually(check: () => Promise<number>, status: number): Promise<void> {
    for (let attempt = 0; attempt < 50 && (await check()) !== status; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await check()).toBe(status);
  }

  it('a key revoked through one process stops working in the other', async () => {
    const tenant = await createTenant(first);
    expect((await users(second, tenant.apiKey.secret)).statusCode).toBe(200); // now cached there
    const revoke = await first.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}/api-keys/${tenant.apiKey.id}`,
      headers: bearer(first.adminToken),
    });
    expect(revoke.statusCode).toBe(200);
    expectProblem(await users(first, tenant.apiKey.secret), 401, 'unauthorized');
    await eventually(async () => (await users(second, tenant.apiKey.secret)).statusCode, 401);
  });

  it("a deleted tenant's key stops working everywhere", async () => {
    const tenant = await createTenant(first);
    expect((await users(second, tenant.apiKey.secret)).statusCode).toBe(200);
    const remove = await first.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(first.adminToken),
    });
    expect(remove.statusCode).toBe(204);
    await eventually(async () => (await users(second, tenant.apiKey.secret)).statusCode, 401);
  });

  it('a user erased through one process is refused by the other', async () => {
    const tenant = await createTenant(first);
    const me = (t: TestApp) =>
      t.app.inject({ method: 'GET', url: '/v1/me', headers: actingAs(tenant, 'gina') });
    expect((await me(second)).statusCode).toBe(200); // created, and known active there
    const erase = await first.app.inject({
      method: 'DELETE',
      url: '/v1/users/gina',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(erase.statusCode).toBe(204);
    await eventually(async () => (await me(second)).statusCode, 401);
  });
});

describe('a revocation no process announced (made by the CLI)', () => {
  let database: TestDatabase;
  let t: TestApp;
  beforeAll(async () => {
    database = await createTestDatabase();
    t = await buildTestApp(database, {
      credentialCache: { apiKeyTtlMs: 300, userTtlMs: 300, maxEntries: 1000 },
    });
  });
  afterAll(async () => {
    await t.app.close();
    await database.drop();
  });

  it('is seen once the cached key outlives its TTL', async () => {
    const tenant = await createTenant(t);
    const users = () =>
      t.app.inject({ method: 'GET', url: '/v1/users', headers: bearer(tenant.apiKey.secret) });
    expect((await users()).statusCode).toBe(200);
    // What `parley key revoke` does from another process: the row changes, nobody is told.
    expect(await revokeApiKey(database.db.orm, tenant.id, tenant.apiKey.id)).toBeDefined();
    expect((await users()).statusCode).toBe(200); // still trusted from the cache
    await new Promise((resolve) => setTimeout(resolve, 350));
    expectProblem(await users(), 401, 'unauthorized');
  });
});
