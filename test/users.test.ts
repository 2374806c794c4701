import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import {
  actingAs,
  bearer,
  collectPages,
  createTenant,
  expectProblem,
  mintUserToken,
  putUser,
} from './helpers/factories.ts';

const t = useTestApp();

describe('PUT /v1/users/{id}', () => {
  it('creates with 201, updates with 200, keeps omitted fields and clears null ones', async () => {
    const tenant = await createTenant(t);
    const put = (payload: Record<string, unknown>) =>
      t.app.inject({ method: 'PUT', url: '/v1/users/alice', headers: bearer(tenant.apiKey.secret), payload });
    const created = await put({
      name: 'Alice',
      avatar_url: 'https://cdn.example.com/a.png',
      metadata: { plan: 'pro' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({
      id: 'alice',
      name: 'Alice',
      avatar_url: 'https://cdn.example.com/a.png',
      metadata: { plan: 'pro' },
    });

    const renamed = await put({ name: 'Alice B.' });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json()).toMatchObject({
      name: 'Alice B.',
      avatar_url: 'https://cdn.example.com/a.png',
      metadata: { plan: 'pro' },
    });

    const cleared = await put({ avatar_url: null });
    expect(cleared.json()).toMatchObject({ name: 'Alice B.', avatar_url: null });
    const { created_at, updated_at } = cleared.json<{ created_at: string; updated_at: string }>();
    expect(Date.parse(updated_at)).toBeGreaterThanOrEqual(Date.parse(created_at));
  });

  it('rejects bad input with the field path and writes nothing', async () => {
    const tenant = await createTenant(t);
    const cases: [Record<string, unknown>, string][] = [
      [{ name: '' }, '/body/name'],
      [{ name: 'x'.repeat(201) }, '/body/name'],
      [{ name: 42 }, '/body/name'],
      [{ avatar_url: 'javascript:alert(1)' }, '/body/avatar_url'],
      [{ metadata: 'not an object' }, '/body/metadata'],
      [{ metadata: { blob: 'x'.repeat(9000) } }, '/body/metadata'],
      [{ unknown_field: true }, '/body/unknown_field'],
    ];
    for (const [payload, path] of cases) {
      const response = await t.app.inject({
        method: 'PUT',
        url: '/v1/users/henry',
        headers: bearer(tenant.apiKey.secret),
        payload,
      });
      const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
        errors: { path: string }[];
      };
      expect(
        problem.errors.map((error) => error.path),
        JSON.stringify(payload),
      ).toContain(path);
    }
    const lookup = await t.app.inject({
      method: 'GET',
      url: '/v1/users/henry',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(lookup, 404, 'not_found');
  });

  it('accepts every character the contract allows in a user id, and nothing else', async () => {
    const tenant = await createTenant(t);
    const id = 'a.B_9:x@y-z';
    expect((await putUser(t, tenant, id)).id).toBe(id);
    const tooLong = await t.app.inject({
      method: 'PUT',
      url: `/v1/users/${'u'.repeat(129)}`,
      headers: bearer(tenant.apiKey.secret),
      payload: {},
    });
    expectProblem(tooLong, 400, 'validation_failed');
    const slash = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/a%2Fb',
      headers: bearer(tenant.apiKey.secret),
      payload: {},
    });
    expectProblem(slash, 400, 'validation_failed');
  });
});

describe('reading users', () => {
  it('GET /v1/users/{id} and GET /v1/me work for users of the tenant', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'ivan', { name: 'Ivan' });
    const token = await mintUserToken(t, tenant, 'judy');
    const asJudy = await t.app.inject({ method: 'GET', url: '/v1/users/ivan', headers: bearer(token) });
    expect(asJudy.json()).toMatchObject({ id: 'ivan', name: 'Ivan' });
    const meResponse = await t.app.inject({ method: 'GET', url: '/v1/me', headers: bearer(token) });
    expect(meResponse.json()).toMatchObject({ id: 'judy' });
    expectProblem(
      await t.app.inject({ method: 'GET', url: '/v1/users/nobody', headers: bearer(token) }),
      404,
      'not_found',
    );
  });

  it('lists by id or case-insensitive name prefix, keyset paged', async () => {
    const tenant = await createTenant(t);
    const names: Record<string, string> = {
      'sam-1': 'Samantha',
      'sam-2': 'Sam',
      'sam-3': 'Zed',
      'x-1': 'samuel',
      'x-2': 'Bob',
      'x-3': 'sa%m',
      'x-4': 'SA_m',
    };
    for (const [id, name] of Object.entries(names)) await putUser(t, tenant, id, { name });

    const collect = async (query: string, limit: number) => {
      const params = new URLSearchParams({ query, limit: String(limit) });
      const { items, pages } = await collectPages(
        t,
        `/v1/users?${params.toString()}`,
        bearer(tenant.apiKey.secret),
      );
      return { ids: items.map((user) => user.id), pages };
    };

    const sam = await collect('sam', 2);
    expect(sam.ids).toEqual(['sam-1', 'sam-2', 'sam-3', 'x-1']);
    expect(sam.pages).toBe(2);
    expect((await collect('SAM', 10)).ids).toEqual(['sam-1', 'sam-2', 'x-1']);
    // LIKE wildcards in the query are literal characters.
    expect((await collect('sa%', 10)).ids).toEqual(['x-3']);
    expect((await collect('sa_', 10)).ids).toEqual(['x-4']);

    const everyone = await t.app.inject({
      method: 'GET',
      url: '/v1/users',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(everyone.json<{ data: unknown[] }>().data).toHaveLength(7);
  });

  it('rejects a forged cursor', async () => {
    const tenant = await createTenant(t);
    const forged = Buffer.from('{"id":1}').toString('base64url');
    const response = await t.app.inject({
      method: 'GET',
      url: `/v1/users?cursor=${forged}`,
      headers: bearer(tenant.apiKey.secret),
    });
    expect(expectProblem(response, 400, 'validation_failed')).toMatchObject({
      errors: [{ path: '/querystring/cursor' }],
    });
  });
});

describe('erasure and export', () => {
  it('erases the profile, hides the user, and lets the backend revive it', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'kate', { name: 'Kate', metadata: { email: 'kate@example.com' } });
    const exported = await t.app.inject({
      method: 'GET',
      url: '/v1/users/kate/export',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(exported.json()).toMatchObject({
      user: { id: 'kate', name: 'Kate', metadata: { email: 'kate@example.com' } },
    });

    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/kate',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(erased.statusCode).toBe(204);
    expectProblem(
      await t.app.inject({ method: 'GET', url: '/v1/users/kate', headers: bearer(tenant.apiKey.secret) }),
      404,
      'not_found',
    );
    expectProblem(
      await t.app.inject({
        method: 'GET',
        url: '/v1/users/kate/export',
        headers: bearer(tenant.apiKey.secret),
      }),
      404,
      'not_found',
    );
    expectProblem(
      await t.app.inject({ method: 'DELETE', url: '/v1/users/kate', headers: bearer(tenant.apiKey.secret) }),
      404,
      'not_found',
    );
    const list = await t.app.inject({
      method: 'GET',
      url: '/v1/users?query=kate',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(list.json<{ data: unknown[] }>().data).toEqual([]);

    const revived = await putUser(t, tenant, 'kate', { name: 'Kate again' });
    expect(revived).toMatchObject({ id: 'kate', name: 'Kate again', metadata: {} });
  });

  it('is for the tenant backend only', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'liam');
    const token = await mintUserToken(t, tenant, 'liam');
    expectProblem(
      await t.app.inject({ method: 'DELETE', url: '/v1/users/liam', headers: bearer(token) }),
      403,
      'forbidden',
    );
    expectProblem(
      await t.app.inject({ method: 'GET', url: '/v1/users/liam/export', headers: actingAs(tenant, 'liam') }),
      403,
      'forbidden',
    );
  });
});
