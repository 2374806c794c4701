import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { bearer, createTenant, expectProblem, type TestTenant } from './helpers/factories.ts';

// Tokens a tenant signs itself carry whatever JSON it put in them. Each claim of the wrong type, and a
// lifetime past PARLEY_MAX_TOKEN_TTL_SECONDS (here 1 day), must be a 401 with a clear detail, never a 500.
const MAX_TTL = 24 * 3600;
let t: TestApp;
let tenant: TestTenant;

beforeAll(async () => {
  t = await buildTestApp(await createTestDatabase(), { maxTokenTtlSeconds: MAX_TTL });
  tenant = await createTenant(t);
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
});

const base64url = (value: string) => Buffer.from(value).toString('base64url');

/** An HS256 JWT over any header and payload JSON, as a careless or hostile backend could sign one. */
function sign(payload: unknown, header: Record<string, unknown> = {}): string {
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: tenant.apiKey.id, ...header }));
  const body = base64url(JSON.stringify(payload));
  const signature = createHmac('sha256', tenant.apiKey.secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

const now = () => Math.floor(Date.now() / 1000);
const me = (token: string) => t.app.inject({ method: 'GET', url: '/v1/me', headers: bearer(token) });

async function expect401(token: string, detail: RegExp) {
  const problem = expectProblem(await me(token), 401, 'unauthorized');
  expect(problem.detail).toMatch(detail);
}

describe('claims of the wrong type', () => {
  it('accepts a well-formed token (the baseline the others differ from)', async () => {
    const response = await me(sign({ sub: 'carol', exp: now() + 600, iat: now() }));
    expect(response.statusCode, response.body).toBe(200);
  });

  it.each([
    ['a number', 42],
    ['a float', 1.5],
    ['a boolean', true],
    ['null', null],
    ['an object', { id: 'carol' }],
    ['an array', ['carol']],
  ])('refuses sub as %s', async (_kind, sub) => {
    await expect401(sign({ sub, exp: now() + 600 }), /sub must be a user id string|claim sub/);
  });

  it('refuses sub as a string that is no user id, or empty', async () => {
    await expect401(sign({ sub: 'not a user id!', exp: now() + 600 }), /sub is not a valid user id/);
    await expect401(sign({ sub: '', exp: now() + 600 }), /sub/);
  });

  it.each([
    ['a numeric string', String(now() + 600)],
    ['a date string', new Date(Date.now() + 600_000).toISOString()],
    ['a boolean', true],
    ['null', null],
    ['an object', { at: now() + 600 }],
    ['an array', [now() + 600]],
  ])('refuses exp as %s', async (_kind, exp) => {
    await expect401(sign({ sub: 'carol', exp }), /exp/);
  });

  it.each([
    ['iat', 'yesterday'],
    ['iat', { at: 1 }],
    ['nbf', 'now'],
    ['nbf', [1]],
  ])('refuses %s as %j', async (claim, value) => {
    await expect401(sign({ sub: 'carol', exp: now() + 600, [claim]: value }), new RegExp(claim));
  });

  it.each([
    ['an array', ['carol']],
    ['a string', 'carol'],
    ['a number', 7],
    ['null', null],
  ])('refuses a payload that is %s', async (_kind, payload) => {
    await expect401(sign(payload), /malformed|claims/i);
  });

  it.each([
    ['a number', 7],
    ['an object', { id: 'x' }],
    ['null', null],
  ])('refuses a kid that is %s', async (_kind, kid) => {
    await expect401(sign({ sub: 'carol', exp: now() + 600 }, { kid }), /kid/);
  });

  it('refuses a header that is not JSON, and a payload that is not base64url JSON', async () => {
    await expect401(`${base64url('{"alg":')}.${base64url('{}')}.sig`, /malformed/);
    const head = base64url(JSON.stringify({ alg: 'HS256', kid: tenant.apiKey.id }));
    const body = base64url('{"sub": "carol", "exp": ');
    const signature = createHmac('sha256', tenant.apiKey.secret)
      .update(`${head}.${body}`)
      .digest('base64url');
    await expect401(`${head}.${body}.${signature}`, /malformed/);
  });
});

describe('PARLEY_MAX_TOKEN_TTL_SECONDS', () => {
  it('refuses a token whose exp is further ahead than the maximum, and accepts one within it', async () => {
    await expect401(sign({ sub: 'carol', exp: now() + MAX_TTL + 3600 }), /longer than the 86400-second/);
    await expect401(sign({ sub: 'carol', exp: 1e20 }), /longer than/);
    expect((await me(sign({ sub: 'carol', exp: now() + MAX_TTL - 60 }))).statusCode).toBe(200);
  });

  it('refuses a token whose exp is further than the maximum past its iat, even if less from now', async () => {
    const iat = now() - MAX_TTL;
    await expect401(sign({ sub: 'carol', iat, exp: now() + 3600 }), /exp - iat/);
    expect((await me(sign({ sub: 'carol', iat: now() - 3600, exp: now() + 3600 }))).statusCode).toBe(200);
  });

  it('refuses to mint a token that would live longer than the maximum', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/users/carol/tokens',
      headers: bearer(tenant.apiKey.secret),
      payload: { ttl_seconds: MAX_TTL + 60 },
    });
    expectProblem(response, 400, 'validation_failed');
    const { errors } = response.json<{ errors: { path: string; message: string }[] }>();
    expect(errors.map((error) => error.path)).toEqual(['/body/ttl_seconds']);
    expect(errors[0]?.message).toMatch(/<= 86400/);
    const minted = await t.app.inject({
      method: 'POST',
      url: '/v1/users/carol/tokens',
      headers: bearer(tenant.apiKey.secret),
      payload: { ttl_seconds: MAX_TTL },
    });
    expect(minted.statusCode, minted.body).toBe(201);
    expect((await me(minted.json<{ token: string }>().token)).statusCode).toBe(200);
  });
});
