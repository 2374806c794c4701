import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { inTenant, OPERATOR_SCOPE_ID } from '../src/db/tenant-scope.ts';
import { purgeExpiredIdempotencyKeys } from '../src/modules/idempotency/idempotency.repository.ts';
import { useTestApp } from './helpers/app.ts';
import { bearer, createTenant, expectProblem, uniqueName } from './helpers/factories.ts';

const t = useTestApp();

describe('Idempotency-Key', () => {
  it('replays the stored response to a repeat with the same body, without running it again', async () => {
    const name = uniqueName('idem');
    const create = () =>
      t.app.inject({
        method: 'POST',
        url: '/v1/admin/tenants',
        headers: { ...bearer(t.adminToken), 'idempotency-key': `create-${name}` },
        payload: { name },
      });
    const first = await create();
    const second = await create();
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.body).toBe(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(second.headers['x-request-id']).not.toBe(first.headers['x-request-id']);

    // The stored response carries the new api key's secret, so it is kept sealed, never as sent.
    const secret = first.json<{ api_key: { secret: string } }>().api_key.secret;
    const stored = await inTenant(t.database.db.orm, OPERATOR_SCOPE_ID, async (scope) =>
      rowsOf<{ response_body: string }>(
        await scope.tx.execute(
          sql`SELECT response_body FROM idempotency_keys WHERE key = ${`create-${name}`}`,
        ),
      ),
    );
    expect(stored[0]?.response_body).toMatch(/^v1\./);
    expect(stored[0]?.response_body).not.toContain(secret);
    expect(stored[0]?.response_body).not.toContain(name);

    const all = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants?limit=200',
      headers: bearer(t.adminToken),
    });
    const named = all.json<{ data: { name: string }[] }>().data.filter((tenant) => tenant.name === name);
    expect(named).toHaveLength(1);
  });

  it('answers 422 for the same key with a different body or URL', async () => {
    const tenant = await createTenant(t);
    const headers = { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'profile-1' };
    const first = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/quinn',
      headers,
      payload: { name: 'Quinn' },
    });
    expect(first.statusCode).toBe(201);
    const otherBody = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/quinn',
      headers,
      payload: { name: 'Q' },
    });
    expectProblem(otherBody, 422, 'idempotency_key_reused');
    const otherUrl = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/rita',
      headers,
      payload: { name: 'Quinn' },
    });
    expectProblem(otherUrl, 422, 'idempotency_key_reused');
    const user = await t.app.inject({
      method: 'GET',
      url: '/v1/users/quinn',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(user.json()).toMatchObject({ name: 'Quinn' });
  });

  it('keeps keys apart per tenant', async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    const send = (headers: Record<string, string>, userId: string) =>
      t.app.inject({
        method: 'POST',
        url: `/v1/users/${userId}/tokens`,
        headers: { ...headers, 'idempotency-key': 'same-key' },
        payload: { ttl_seconds: 600 },
      });
    const fromAcme = await send(bearer(acme.apiKey.secret), 'sam');
    const fromGlobex = await send(bearer(globex.apiKey.secret), 'sam');
    expect(fromAcme.statusCode).toBe(201);
    expect(fromGlobex.statusCode).toBe(201);
    expect(fromGlobex.headers['idempotent-replayed']).toBeUndefined();
    expect(fromGlobex.body).not.toBe(fromAcme.body);
  });

  it('stores client errors but not server errors, and ignores safe methods', async () => {
    const tenant = await createTenant(t);
    const headers = { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'erase-1' };
    const missing = await t.app.inject({ method: 'DELETE', url: '/v1/users/ghost', headers });
    expectProblem(missing, 404, 'not_found');
    const replay = await t.app.inject({ method: 'DELETE', url: '/v1/users/ghost', headers });
    expect(replay.statusCode).toBe(404);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['content-type']).toMatch(/^application\/problem\+json/);

    const get1 = await t.app.inject({ method: 'GET', url: '/v1/users', headers });
    const get2 = await t.app.inject({ method: 'GET', url: '/v1/users', headers });
    expect(get2.headers['idempotent-replayed']).toBeUndefined();
    expect(get1.statusCode).toBe(200);
  });

  it('answers 409 while the first request with the key is still running, and 422 for another body', async () => {
    const tenant = await createTenant(t);
    // The claim a request in flight holds: same caller, key and request (method, URL, body).
    const requestHash = createHash('sha256').update('PUT /v1/users/tess\n{}').digest('hex');
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash)
        VALUES (${tenant.id}, 'backend', 'in-flight', ${requestHash})`),
    );
    const send = (payload: Record<string, unknown>) =>
      t.app.inject({
        method: 'PUT',
        url: '/v1/users/tess',
        headers: { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'in-flight' },
        payload,
      });
    expectProblem(await send({}), 409, 'conflict');
    expectProblem(await send({ name: 'Tess' }), 422, 'idempotency_key_reused');
    const user = await t.app.inject({
      method: 'GET',
      url: '/v1/users/tess',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(user, 404, 'not_found');
  });

  it('lets exactly one of two concurrent requests with one key run', async () => {
    const tenant = await createTenant(t);
    const headers = { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'race' };
    const [a, b] = await Promise.all(
      [1, 2].map(() =>
        t.app.inject({ method: 'PUT', url: '/v1/users/uma', headers, payload: { name: 'Uma' } }),
      ),
    );
    const statuses = [a?.statusCode, b?.statusCode].sort();
    // Either the second saw the first still running (409) or its stored 201 (replayed).
    expect([
      [201, 201],
      [201, 409],
    ]).toContainEqual(statuses);
    const replayed = [a, b].filter((response) => response?.headers['idempotent-replayed'] === 'true');
    if (statuses[1] === 201) expect(replayed).toHaveLength(1);
  });

  it('rejects malformed keys', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/vic',
      headers: { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'x'.repeat(256) },
      payload: {},
    });
    expect(expectProblem(response, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/headers/idempotency-key' }],
    });
  });

  it('forgets keys after 24 hours', async () => {
    const tenant = await createTenant(t);
    const headers = { ...bearer(tenant.apiKey.secret), 'idempotency-key': 'old' };
    expect(
      (await t.app.inject({ method: 'PUT', url: '/v1/users/wes', headers, payload: { name: 'A' } }))
        .statusCode,
    ).toBe(201);
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(
        sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`,
      ),
    );
    // An expired key is free for a new request, even with a different body.
    const reused = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/wes',
      headers,
      payload: { name: 'B' },
    });
    expect(reused.statusCode).toBe(200);
    expect(reused.json()).toMatchObject({ name: 'B' });

    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(
        sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`,
      ),
    );
    expect(await purgeExpiredIdempotencyKeys(t.database.db.orm)).toBeGreaterThanOrEqual(1);
    const left = await inTenant(t.database.db.orm, tenant.id, async (scope) =>
      rowsOf<{ n: number }>(
        await scope.tx.execute(sql`SELECT count(*)::int AS n FROM idempotency_keys WHERE key = 'old'`),
      ),
    );
    expect(left[0]?.n).toBe(0);
  });
});
