import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import {
  actingAs,
  bearer,
  createTenant,
  expectProblem,
  mintUserToken,
  type TestTenant,
} from './helpers/factories.ts';

const t = useTestApp();

/** Signs a token the way a tenant backend would, with any key, algorithm and claims. */
async function signToken(
  secret: string,
  options: { kid?: string; alg?: string; sub?: string; expiresIn?: string | number | null },
): Promise<string> {
  let jwt = new SignJWT({}).setProtectedHeader({
    alg: options.alg ?? 'HS256',
    ...(options.kid === undefined ? {} : { kid: options.kid }),
  });
  if (options.sub !== undefined) jwt = jwt.setSubject(options.sub);
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(options.expiresIn ?? '1h');
  return jwt.sign(new TextEncoder().encode(secret));
}

const me = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/v1/me', headers });

async function expectUnauthorized(token: string, detail?: RegExp) {
  const problem = expectProblem(await me(bearer(token)), 401, 'unauthorized');
  if (detail) expect(problem.detail).toMatch(detail);
}

describe('user tokens (HS256 JWT signed with an api key secret)', () => {
  it('accepts a token a tenant backend signed itself, and creates its user on first sight', async () => {
    const tenant = await createTenant(t);
    const token = await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id, sub: 'carol' });
    const response = await me(bearer(token));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ id: 'carol', name: null, metadata: {} });
    const lookup = await t.app.inject({
      method: 'GET',
      url: '/v1/users/carol',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(lookup.statusCode).toBe(200);
  });

  it('accepts a token minted by POST /v1/users/{id}/tokens, with the requested lifetime', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/users/dave/tokens',
      headers: bearer(tenant.apiKey.secret),
      payload: { ttl_seconds: 120 },
    });
    expect(response.statusCode, response.body).toBe(201);
    const { token, expires_at } = response.json<{ token: string; expires_at: string }>();
    const lifetime = Date.parse(expires_at) - Date.now();
    expect(lifetime).toBeGreaterThan(100_000);
    expect(lifetime).toBeLessThanOrEqual(120_000);
    expect((await me(bearer(token))).json()).toMatchObject({ id: 'dave' });
  });

  it('refuses token lifetimes outside 60 s to 30 days', async () => {
    const tenant = await createTenant(t);
    for (const ttl_seconds of [59, 30 * 24 * 3600 + 1, 1.5]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/users/dave/tokens',
        headers: bearer(tenant.apiKey.secret),
        payload: { ttl_seconds },
      });
      expectProblem(response, 400, 'validation_failed');
    }
  });

  it('rejects a missing or non-bearer Authorization header', async () => {
    expectProblem(await me({}), 401, 'unauthorized');
    expectProblem(await me({ authorization: 'Basic YWxpY2U6cHc=' }), 401, 'unauthorized');
    expectProblem(await me({ authorization: 'Bearer' }), 401, 'unauthorized');
  });

  it('rejects a bad signature', async () => {
    const tenant = await createTenant(t);
    const token = await signToken(`${tenant.apiKey.secret}x`, { kid: tenant.apiKey.id, sub: 'carol' });
    await expectUnauthorized(token, /signature/);
    const [header, payload, signature] = (await mintUserToken(t, tenant, 'carol')).split('.');
    const tampered = Buffer.from(JSON.stringify({ sub: 'mallory', exp: 9_999_999_999 })).toString(
      'base64url',
    );
    await expectUnauthorized(`${header}.${tampered}.${signature}`);
    expect(payload).toBeTruthy();
  });

  it('rejects alg none and every algorithm but HS256', async () => {
    const tenant = await createTenant(t);
    const unsecured = new UnsecuredJWT({}).setSubject('carol').setExpirationTime('1h').encode();
    const [, body] = unsecured.split('.');
    const withKid = Buffer.from(JSON.stringify({ alg: 'none', kid: tenant.apiKey.id })).toString('base64url');
    await expectUnauthorized(`${withKid}.${body}.`);
    for (const alg of ['HS384', 'HS512']) {
      await expectUnauthorized(
        await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id, sub: 'carol', alg }),
      );
    }
    const { privateKey } = await generateKeyPair('RS256');
    const rs256 = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: tenant.apiKey.id })
      .setSubject('carol')
      .setExpirationTime('1h')
      .sign(privateKey);
    await expectUnauthorized(rs256);
  });

  it('rejects an unknown, missing or malformed kid', async () => {
    const tenant = await createTenant(t);
    await expectUnauthorized(
      await signToken(tenant.apiKey.secret, { kid: '01a20000-0000-7000-8000-000000000000', sub: 'carol' }),
      /unknown api key/,
    );
    await expectUnauthorized(await signToken(tenant.apiKey.secret, { sub: 'carol' }), /kid/);
    await expectUnauthorized(await signToken(tenant.apiKey.secret, { kid: 'not-a-uuid', sub: 'carol' }));
    await expectUnauthorized('not.a.jwt');
  });

  it('rejects a token whose key was revoked', async () => {
    const tenant = await createTenant(t);
    const token = await mintUserToken(t, tenant, 'carol');
    expect((await me(bearer(token))).statusCode).toBe(200);
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}/api-keys/${tenant.apiKey.id}`,
      headers: bearer(t.adminToken),
    });
    expect(revoke.statusCode).toBe(200);
    await expectUnauthorized(token, /revoked/);
  });

  it('rejects an expired token and one without exp or sub', async () => {
    const tenant = await createTenant(t);
    const past = Math.floor(Date.now() / 1000) - 60;
    await expectUnauthorized(
      await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id, sub: 'carol', expiresIn: past }),
      /expired/,
    );
    await expectUnauthorized(
      await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id, sub: 'carol', expiresIn: null }),
    );
    await expectUnauthorized(await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id }));
    await expectUnauthorized(
      await signToken(tenant.apiKey.secret, { kid: tenant.apiKey.id, sub: 'bad user id!' }),
    );
  });

  it("rejects a token signed with one tenant's secret that names another tenant's key", async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await expectUnauthorized(
      await signToken(acme.apiKey.secret, { kid: globex.apiKey.id, sub: 'carol' }),
      /signature/,
    );
  });
});

describe('api keys', () => {
  it('authenticate the tenant backend, and act as a user with X-Parley-User', async () => {
    const tenant = await createTenant(t);
    const asUser = await me(actingAs(tenant, 'erin'));
    expect(asUser.statusCode, asUser.body).toBe(200);
    expect(asUser.json()).toMatchObject({ id: 'erin' });
  });

  it('reject a wrong, malformed or revoked secret', async () => {
    const tenant = await createTenant(t);
    const users = (secret: string) =>
      t.app.inject({ method: 'GET', url: '/v1/users', headers: bearer(secret) });
    expect((await users(tenant.apiKey.secret)).statusCode).toBe(200);
    const wrong =
      tenant.apiKey.secret.slice(0, -4) + (tenant.apiKey.secret.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expectProblem(await users(wrong), 401, 'unauthorized');
    expectProblem(await users('psk_nope'), 401, 'unauthorized');
    await t.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${tenant.id}/api-keys/${tenant.apiKey.id}`,
      headers: bearer(t.adminToken),
    });
    expectProblem(await users(tenant.apiKey.secret), 401, 'unauthorized');
  });

  it('reject a malformed X-Parley-User, and X-Parley-User with a user token', async () => {
    const tenant: TestTenant = await createTenant(t);
    const problem = expectProblem(await me(actingAs(tenant, 'no spaces allowed')), 400, 'validation_failed');
    expect(problem).toMatchObject({ errors: [{ path: '/headers/x-parley-user' }] });
    const token = await mintUserToken(t, tenant, 'carol');
    expectProblem(await me({ ...bearer(token), 'x-parley-user': 'dave' }), 403, 'forbidden');
  });

  it('keep user-only and backend-only routes apart', async () => {
    const tenant = await createTenant(t);
    expectProblem(await me(bearer(tenant.apiKey.secret)), 403, 'forbidden');
    const token = await mintUserToken(t, tenant, 'carol');
    const asUser = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/carol',
      headers: bearer(token),
      payload: { name: 'Mallory' },
    });
    expectProblem(asUser, 403, 'forbidden');
    const mint = await t.app.inject({
      method: 'POST',
      url: '/v1/users/zed/tokens',
      headers: actingAs(tenant, 'carol'),
    });
    expectProblem(mint, 403, 'forbidden');
    // A refused request changes nothing: the user it would have acted as was not created.
    const acting = await t.app.inject({
      method: 'GET',
      url: '/v1/users/carol-never',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(acting, 404, 'not_found');
    const refused = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/someone',
      headers: actingAs(tenant, 'carol-never'),
    });
    expectProblem(refused, 403, 'forbidden');
    const stillMissing = await t.app.inject({
      method: 'GET',
      url: '/v1/users/carol-never',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(stillMissing, 404, 'not_found');
  });

  it('check the credential before the route: an invalid one is 401 even where X-Parley-User is refused', async () => {
    const tenant = await createTenant(t);
    const forged = {
      authorization:
        'Bearer psk_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    };
    const response = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/someone',
      headers: { ...forged, 'x-parley-user': 'carol' },
    });
    expectProblem(response, 401, 'unauthorized');
    const garbage = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/someone',
      headers: { ...bearer('junk'), 'x-parley-user': 'carol' },
    });
    expectProblem(garbage, 401, 'unauthorized');
    const lookup = await t.app.inject({
      method: 'GET',
      url: '/v1/users/carol',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(lookup, 404, 'not_found');
  });

  it('are not operator credentials, and the operator token is not a tenant credential', async () => {
    const tenant = await createTenant(t);
    const admin = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(admin, 401, 'unauthorized');
    const users = await t.app.inject({ method: 'GET', url: '/v1/users', headers: bearer(t.adminToken) });
    expectProblem(users, 401, 'unauthorized');
  });
});

describe('erased users', () => {
  it('cannot authenticate any more, with a token or through X-Parley-User', async () => {
    const tenant = await createTenant(t);
    const token = await mintUserToken(t, tenant, 'frank');
    expect((await me(bearer(token))).statusCode).toBe(200);
    const erase = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/frank',
      headers: bearer(tenant.apiKey.secret),
    });
    expect(erase.statusCode).toBe(204);
    await expectUnauthorized(token, /erased/);
    expectProblem(await me(actingAs(tenant, 'frank')), 401, 'unauthorized');
  });
});
