import { createECDH, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  asUser,
  bearer,
  createTenantWithUsers,
  expectProblem,
  type TestTenant,
} from './helpers/factories.ts';

/** Keys as a browser makes them: a P-256 public key and 16 random bytes. */
const browserKeys = () => ({
  p256dh: createECDH('prime256v1').generateKeys().toString('base64url'),
  auth: randomBytes(16).toString('base64url'),
});
/** A push service endpoint on a public address (never called here: nothing is sent to these users). */
const publicEndpoint = () => `https://8.8.8.8/push/${randomBytes(8).toString('hex')}`;

interface Subscription {
  id: string;
  endpoint: string;
  keys: { p256dh: string; auth: string };
  created_at: string;
}

/**
 * The subscription routes and the VAPID key, on an app that refuses private addresses, as production does
 * unless the operator allows them.
 */
describe('push subscriptions', () => {
  let t: TestApp;
  let tenant: TestTenant;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase());
    tenant = await createTenantWithUsers(t, 'ann', 'bob');
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
  });

  it('subscribes once per endpoint, lists, and unsubscribes', async () => {
    const body = { endpoint: publicEndpoint(), keys: browserKeys() };
    const created = await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', body);
    expect(created.statusCode, created.body).toBe(201);
    const subscription = created.json<Subscription>();
    expect(subscription).toMatchObject({ endpoint: body.endpoint, keys: body.keys });

    // The browser subscribing again with the same endpoint: the same subscription, 200.
    const again = await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', body);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Subscription>()).toEqual(subscription);

    const second = await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', {
      endpoint: publicEndpoint(),
      keys: browserKeys(),
    });
    expect(second.statusCode).toBe(201);
    const listed = await asUser(t, tenant, 'ann').get('/v1/me/push-subscriptions');
    expect(listed.statusCode).toBe(200);
    expect(listed.json<{ data: Subscription[] }>().data.map((row) => row.id)).toEqual([
      second.json<Subscription>().id,
      subscription.id,
    ]);
    // Bob sees none of them.
    expect((await asUser(t, tenant, 'bob').get('/v1/me/push-subscriptions')).json()).toEqual({ data: [] });

    const removed = await asUser(t, tenant, 'ann').delete(`/v1/me/push-subscriptions/${subscription.id}`);
    expect(removed.statusCode).toBe(204);
    expectProblem(
      await asUser(t, tenant, 'ann').delete(`/v1/me/push-subscriptions/${subscription.id}`),
      404,
      'not_found',
    );
    const left = await asUser(t, tenant, 'ann').get('/v1/me/push-subscriptions');
    expect(left.json<{ data: Subscription[] }>().data.map((row) => row.id)).toEqual([
      second.json<Subscription>().id,
    ]);
  });

  it('keeps the newest 20 subscriptions of a user', async () => {
    const other = await createTenantWithUsers(t, 'max');
    const ids: string[] = [];
    for (let n = 0; n < 21; n += 1) {
      const created = await asUser(t, other, 'max').post('/v1/me/push-subscriptions', {
        endpoint: publicEndpoint(),
        keys: browserKeys(),
      });
      expect(created.statusCode, created.body).toBe(201);
      ids.push(created.json<Subscription>().id);
    }
    const listed = await asUser(t, other, 'max').get('/v1/me/push-subscriptions');
    expect(listed.json<{ data: Subscription[] }>().data.map((row) => row.id)).toEqual(ids.slice(1).reverse());
  });

  it("answers 404 for another user's subscription, and another tenant's", async () => {
    const created = await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', {
      endpoint: publicEndpoint(),
      keys: browserKeys(),
    });
    const id = created.json<Subscription>().id;
    expectProblem(await asUser(t, tenant, 'bob').delete(`/v1/me/push-subscriptions/${id}`), 404, 'not_found');
    const other = await createTenantWithUsers(t, 'ann');
    expectProblem(await asUser(t, other, 'ann').delete(`/v1/me/push-subscriptions/${id}`), 404, 'not_found');
    const still = await asUser(t, tenant, 'ann').get('/v1/me/push-subscriptions');
    expect(still.json<{ data: Subscription[] }>().data.map((row) => row.id)).toContain(id);
  });

  it('refuses endpoints on private addresses, and keys no push can be encrypted to', async () => {
    for (const endpoint of ['http://127.0.0.1:9/push', 'https://10.1.2.3/push', 'https://[::1]/push']) {
      const problem = expectProblem(
        await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', { endpoint, keys: browserKeys() }),
        400,
        'validation_failed',
      );
      expect(JSON.stringify(problem)).toContain('/body/endpoint');
    }
    const notAPoint = Buffer.alloc(65, 7);
    notAPoint[0] = 4;
    const badKeys = [
      { p256dh: notAPoint.toString('base64url'), auth: randomBytes(16).toString('base64url') },
      { p256dh: browserKeys().p256dh, auth: randomBytes(17).toString('base64url') },
    ];
    for (const keys of badKeys) {
      expectProblem(
        await asUser(t, tenant, 'ann').post('/v1/me/push-subscriptions', {
          endpoint: publicEndpoint(),
          keys,
        }),
        400,
        'validation_failed',
      );
    }
    const listed = await asUser(t, tenant, 'ann').get('/v1/me/push-subscriptions');
    const endpoints = listed.json<{ data: Subscription[] }>().data.map((row) => row.endpoint);
    expect(endpoints.some((endpoint) => !endpoint.startsWith('https://8.8.8.8/'))).toBe(false);
  });

  it("is part of the user's export, with the endpoint and keys the browser gave", async () => {
    const other = await createTenantWithUsers(t, 'una', 'vic');
    const made: Subscription[] = [];
    for (let n = 0; n < 2; n += 1) {
      const created = await asUser(t, other, 'una').post('/v1/me/push-subscriptions', {
        endpoint: publicEndpoint(),
        keys: browserKeys(),
      });
      expect(created.statusCode, created.body).toBe(201);
      made.push(created.json<Subscription>());
    }
    await asUser(t, other, 'vic').post('/v1/me/push-subscriptions', {
      endpoint: publicEndpoint(),
      keys: browserKeys(),
    });
    const exportOf = async (userId: string) => {
      const response = await t.app.inject({
        method: 'GET',
        url: `/v1/users/${userId}/export`,
        headers: bearer(other.apiKey.secret),
      });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<{ push_subscriptions: Subscription[] }>().push_subscriptions;
    };
    // Newest first, each as the subscription routes show it: nothing of another user's.
    expect(await exportOf('una')).toEqual([...made].reverse());
    expect((await exportOf('vic')).map((row) => row.endpoint)).not.toContain(made[0]?.endpoint);
    expect(await exportOf('vic')).toHaveLength(1);
  });

  it("goes with the user's erasure", async () => {
    const other = await createTenantWithUsers(t, 'zed');
    const created = await asUser(t, other, 'zed').post('/v1/me/push-subscriptions', {
      endpoint: publicEndpoint(),
      keys: browserKeys(),
    });
    expect(created.statusCode).toBe(201);
    // Read under the tenant's own setting (row-level security), as the server reads it.
    const count = async () =>
      inTenant(t.database.db.orm, other.id, async (scope) =>
        Number(
          rowsOf<{ n: number }>(
            await scope.tx.execute(sql`SELECT count(*)::int AS n FROM push_subscriptions`),
          )[0]?.n,
        ),
      );
    expect(await count()).toBe(1);
    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/zed',
      headers: bearer(other.apiKey.secret),
    });
    expect(erased.statusCode, erased.body).toBe(204);
    expect(await count()).toBe(0);
  });

  it('is done as a user: the backend alone is refused', async () => {
    expectProblem(
      await t.app.inject({
        method: 'POST',
        url: '/v1/me/push-subscriptions',
        headers: bearer(tenant.apiKey.secret),
        payload: { endpoint: publicEndpoint(), keys: browserKeys() },
      }),
      403,
      'forbidden',
    );
  });

  it('gives every caller the same VAPID public key, generated once and stored sealed', async () => {
    const asBackend = await t.app.inject({
      method: 'GET',
      url: '/v1/push/vapid-public-key',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(asBackend.statusCode, asBackend.body).toBe(200);
    const key = asBackend.json<{ public_key: string }>().public_key;
    expect(Buffer.from(key, 'base64url')).toHaveLength(65);
    expect((await asUser(t, tenant, 'bob').get('/v1/push/vapid-public-key')).json()).toEqual({
      public_key: key,
    });
    expect((await t.app.inject({ method: 'GET', url: '/v1/push/vapid-public-key' })).statusCode).toBe(401);

    // Another process of the deployment (same database and server key) signs with the same pair.
    const sibling = await buildTestApp(t.database, { serverKey: t.serverKey, adminToken: t.adminToken });
    try {
      const fromSibling = await sibling.app.inject({
        method: 'GET',
        url: '/v1/push/vapid-public-key',
        headers: bearer(tenant.apiKey.secret),
      });
      expect(fromSibling.json()).toEqual({ public_key: key });
    } finally {
      await sibling.app.close();
    }
    // The database holds the private key sealed, not as it is.
    const stored = rowsOf<{ value: string }>(
      await t.database.db.orm.execute(sql`SELECT value FROM settings WHERE name = 'vapid_keys'`),
    );
    const value = JSON.parse(stored[0]?.value ?? '{}') as { public_key: string; private_key: string };
    expect(value.public_key).toBe(key);
    expect(value.private_key).toMatch(/^v1\./);
  });

  it('serves the configured VAPID key when the operator sets one', async () => {
    const configured = await buildTestApp(await createTestDatabase(), {
      vapid: {
        keys: {
          publicKey:
            'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U',
          privateKey: 'UUxI4O8-FbRouAevSmBQ6o18hgE4nSG3qwvJTfKc-ls',
        },
        subject: 'mailto:ops@example.com',
      },
    });
    try {
      const other = await createTenantWithUsers(configured, 'ann');
      const response = await asUser(configured, other, 'ann').get('/v1/push/vapid-public-key');
      expect(response.json()).toEqual({
        public_key: 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U',
      });
    } finally {
      await configured.app.close();
      await configured.database.drop();
    }
  });
});
