import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { users } from '../src/db/schema/users.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { useTestApp } from './helpers/app.ts';
import { bearer, createTenant, expectProblem, mintUserToken, putUser } from './helpers/factories.ts';

const t = useTestApp();
const query = async <T>(text: ReturnType<typeof sql>) => rowsOf<T>(await t.database.db.orm.execute(text));

/** Tables that route credentials to tenants; every other table holding tenant_id must be under RLS. */
const CONTROL_PLANE_TABLES = ['api_keys', 'tenants'];

describe('row-level security', () => {
  it('runs every query as a role that is not superuser, not BYPASSRLS and owns no table', async () => {
    const [role] = await query<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>(
      sql`SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
    );
    expect(role).toEqual({ name: 'parley_app', rolsuper: false, rolbypassrls: false });
    const owned = await query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user`,
    );
    expect(owned[0]?.n).toBe(0);
  });

  it('puts every table with a tenant_id under a tenant policy, tenant_id leading every key and index', async () => {
    const tables = await query<{ table: string; rls: boolean; policies: number }>(sql`
      SELECT c.relname AS table, c.relrowsecurity AS rls,
             (SELECT count(*)::int FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = 'public') AS policies
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r'
        AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')`);
    const tenantTables = tables.filter((table) => !CONTROL_PLANE_TABLES.includes(table.table));
    expect(tenantTables.map((table) => table.table)).toEqual(
      expect.arrayContaining(['users', 'idempotency_keys']),
    );
    for (const table of tenantTables) {
      expect(table, table.table).toMatchObject({ rls: true, policies: 1 });
    }
    const indexes = await query<{ table: string; index: string; first_column: string }>(sql`
      SELECT t.relname AS table, i.relname AS index, a.attname AS first_column
      FROM pg_index x
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
      WHERE n.nspname = 'public'`);
    for (const index of indexes.filter((row) => tenantTables.some((table) => table.table === row.table))) {
      expect(index.first_column, `${index.table}.${index.index}`).toBe('tenant_id');
    }
  });

  it('shows no rows to a query run without a tenant, and only its own to a query with one', async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await putUser(t, acme, 'mia');
    await putUser(t, globex, 'noah');

    const unscoped = await t.database.db.orm.select().from(users);
    expect(unscoped).toEqual([]);
    const inAcme = await inTenant(t.database.db.orm, acme.id, (scope) =>
      scope.tx.select({ id: users.id }).from(users),
    );
    expect(inAcme).toEqual([{ id: 'mia' }]);
  });

  it("refuses to write a row into another tenant's data", async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await expect(
      inTenant(t.database.db.orm, acme.id, (scope) =>
        scope.tx.insert(users).values({ tenantId: globex.id, id: 'intruder' }),
      ),
    ).rejects.toThrow();
    const updated = await inTenant(t.database.db.orm, acme.id, (scope) =>
      scope.tx
        .update(users)
        .set({ name: 'hijacked' })
        .where(sql`tenant_id = ${globex.id}`)
        .returning(),
    );
    expect(updated).toEqual([]);
  });
});

/**
 * Every tenant route, called by tenant B with tenant A's ids. Reads and deletes answer 404; routes that
 * create in the caller's own namespace may succeed but must leave A's data untouched.
 */
const CROSS_TENANT_EXPECTATIONS: Record<string, number> = {
  'GET /v1/users/{user_id}': 404,
  'DELETE /v1/users/{user_id}': 404,
  'GET /v1/users/{user_id}/export': 404,
  'PUT /v1/users/{user_id}': 201,
  'POST /v1/users/{user_id}/tokens': 201,
  'GET /v1/users': 200,
  'GET /v1/me': 200,
};

describe("another tenant's ids", () => {
  it('answer 404 (or act only within the caller tenant) on every tenant route', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const tenantRoutes = Object.entries(document.paths)
      .filter(([path]) => path.startsWith('/v1/') && !path.startsWith('/v1/admin/'))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect([...tenantRoutes].sort(), 'a new route needs a cross-tenant expectation here').toEqual(
      Object.keys(CROSS_TENANT_EXPECTATIONS).sort(),
    );

    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await putUser(t, acme, 'olivia', { name: 'Olivia of Acme' });
    const globexAsUser = await mintUserToken(t, globex, 'peter');

    // Reads and deletes first: the creating routes then make a same-named user in the caller's tenant.
    const creatingLast = [...tenantRoutes].sort(
      (a, b) => Number(CROSS_TENANT_EXPECTATIONS[a] === 201) - Number(CROSS_TENANT_EXPECTATIONS[b] === 201),
    );
    for (const route of creatingLast) {
      const [method, path] = route.split(' ') as ['GET' | 'PUT' | 'POST' | 'DELETE', string];
      const url = path.replace('{user_id}', 'olivia');
      const headers = route === 'GET /v1/me' ? bearer(globexAsUser) : bearer(globex.apiKey.secret);
      const response = await t.app.inject({
        method,
        url,
        headers,
        ...(method === 'PUT' ? { payload: { name: 'Not Olivia' } } : {}),
      });
      const expected = CROSS_TENANT_EXPECTATIONS[route];
      if (expected === 404) expectProblem(response, 404, 'not_found');
      else expect(response.statusCode, `${route}: ${response.body}`).toBe(expected);
      expect(response.body, route).not.toContain('Olivia of Acme');
    }

    const original = await t.app.inject({
      method: 'GET',
      url: '/v1/users/olivia',
      headers: bearer(acme.apiKey.secret),
    });
    expect(original.json()).toMatchObject({ id: 'olivia', name: 'Olivia of Acme' });
  });
});
