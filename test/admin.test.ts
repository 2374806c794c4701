import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { useTestApp } from './helpers/app.ts';
import {
  bearer,
  collectPages,
  createTenant,
  expectProblem,
  putUser,
  uniqueName,
} from './helpers/factories.ts';

const t = useTestApp();
const admin = () => bearer(t.adminToken);

describe('admin API: tenants', () => {
  it('refuses requests without the operator token', async () => {
    expectProblem(await t.app.inject({ method: 'GET', url: '/v1/admin/tenants' }), 401, 'unauthorized');
    const wrong = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(`${t.adminToken}x`),
    });
    expectProblem(wrong, 401, 'unauthorized');
  });

  it('creates, reads, renames, lists and deletes tenants', async () => {
    const name = uniqueName('acme');
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: admin(),
      payload: { name },
    });
    expect(created.statusCode, created.body).toBe(201);
    const body = created.json<{
      tenant: { id: string; name: string; created_at: string };
      api_key: { id: string; secret: string };
    }>();
    expect(body.tenant).toMatchObject({ name });
    expect(body.tenant.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(body.tenant.created_at).toISOString()).toBe(body.tenant.created_at);
    expect(body.api_key.secret).toMatch(/^psk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const id = body.tenant.id;

    const read = await t.app.inject({ method: 'GET', url: `/v1/admin/tenants/${id}`, headers: admin() });
    expect(read.json()).toEqual(body.tenant);

    const renamed = await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${id}`,
      headers: admin(),
      payload: { name: 'Acme Inc.' },
    });
    expect(renamed.json()).toMatchObject({ id, name: 'Acme Inc.' });

    const { items } = await collectPages(t, '/v1/admin/tenants?limit=2', admin());
    const ids = items.map((tenant) => tenant.id);
    expect(ids).toContain(id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);

    const deleted = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${id}`,
      headers: admin(),
    });
    expect(deleted.statusCode).toBe(204);
    expectProblem(
      await t.app.inject({ method: 'GET', url: `/v1/admin/tenants/${id}`, headers: admin() }),
      404,
      'not_found',
    );
    expectProblem(
      await t.app.inject({ method: 'DELETE', url: `/v1/admin/tenants/${id}`, headers: admin() }),
      404,
      'not_found',
    );
  });

  it('validates names and ids', async () => {
    for (const name of ['', 'x'.repeat(201)]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/admin/tenants',
        headers: admin(),
        payload: { name },
      });
      expect(expectProblem(response, 400, 'validation_failed')).toMatchObject({
        errors: [{ path: '/body/name' }],
      });
    }
    const missing = await t.app.inject({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: admin(),
      payload: {},
    });
    expect(expectProblem(missing, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/body/name' }],
    });
    const badId = await t.app.inject({ method: 'GET', url: '/v1/admin/tenants/123', headers: admin() });
    expect(expectProblem(badId, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/params/tenant_id' }],
    });
    const badCursor = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants?cursor=zzz',
      headers: admin(),
    });
    expect(expectProblem(badCursor, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/querystring/cursor' }],
    });
    const badLimit = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants?limit=201',
      headers: admin(),
    });
    expect(expectProblem(badLimit, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/querystring/limit' }],
    });
  });

  it('deleting a tenant deletes its data and stops its credentials at once', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'gina', { name: 'Gina' });
    await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: { authorization: `Bearer ${tenant.apiKey.secret}`, 'x-parley-user': 'gina' },
      payload: { type: 'group', name: 'gone soon' },
    });
    const deleted = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: admin(),
    });
    expect(deleted.statusCode).toBe(204);
    const users = await t.app.inject({
      method: 'GET',
      url: '/v1/users',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(users, 401, 'unauthorized');
    const remaining = await inTenant(t.database.db.orm, tenant.id, async (scope) =>
      rowsOf<{ users: number; events: number; conversations: number }>(
        await scope.tx.execute(sql`SELECT (SELECT count(*)::int FROM users) AS users,
          (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM conversations) AS conversations`),
      ),
    );
    expect(remaining[0]).toEqual({ users: 0, events: 0, conversations: 0 });
  });
});

describe('admin API: api keys', () => {
  it('keeps two keys live at once for rotation, then revokes the old one', async () => {
    const tenant = await createTenant(t);
    const second = await t.app.inject({
      method: 'POST',
      url: `/v1/admin/tenants/${tenant.id}/api-keys`,
      headers: admin(),
    });
    expect(second.statusCode, second.body).toBe(201);
    const newKey = second.json<{ id: string; secret: string }>();
    expect(newKey.secret).not.toBe(tenant.apiKey.secret);

    const list = (secret: string) =>
      t.app.inject({ method: 'GET', url: '/v1/users', headers: bearer(secret) });
    expect((await list(tenant.apiKey.secret)).statusCode).toBe(200);
    expect((await list(newKey.secret)).statusCode).toBe(200);

    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}/api-keys/${tenant.apiKey.id}`,
      headers: admin(),
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json<{ revoked_at: string | null }>().revoked_at).not.toBeNull();
    expectProblem(await list(tenant.apiKey.secret), 401, 'unauthorized');
    expect((await list(newKey.secret)).statusCode).toBe(200);

    const keys = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${tenant.id}/api-keys`,
      headers: admin(),
    });
    const data = keys.json<{ data: { id: string; revoked_at: string | null }[] }>().data;
    expect(data.map((key) => key.id)).toEqual([tenant.apiKey.id, newKey.id]);
    expect(data.map((key) => key.revoked_at === null)).toEqual([false, true]);
    expect(keys.body).not.toContain('psk_');
  });

  it('stores only hashes of secrets', async () => {
    const tenant = await createTenant(t);
    const stored = rowsOf<Record<string, unknown>>(
      await t.database.db.orm.execute(sql`SELECT * FROM api_keys WHERE tenant_id = ${tenant.id}`),
    );
    expect(stored).toHaveLength(1);
    const dump = JSON.stringify(stored);
    expect(dump).not.toContain(tenant.apiKey.secret);
    // The MAC part (after `psk_<32 hex>_`; base64url, so it may itself contain '_').
    expect(dump).not.toContain(tenant.apiKey.secret.slice(37));
    expect(stored[0]?.secret_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("answers 404 for another tenant's key and for unknown tenants", async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    const crossed = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${acme.id}/api-keys/${globex.apiKey.id}`,
      headers: admin(),
    });
    expectProblem(crossed, 404, 'not_found');
    const unknown = '01a20000-0000-7000-8000-000000000000';
    for (const [method, url] of [
      ['POST', `/v1/admin/tenants/${unknown}/api-keys`],
      ['GET', `/v1/admin/tenants/${unknown}/api-keys`],
      ['PATCH', `/v1/admin/tenants/${unknown}`],
    ] as const) {
      const response = await t.app.inject({
        method,
        url,
        headers: admin(),
        ...(method === 'PATCH' ? { payload: { name: 'x' } } : {}),
      });
      expectProblem(response, 404, 'not_found');
    }
  });
});
