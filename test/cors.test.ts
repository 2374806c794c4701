import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS } from '../src/config.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { actingAs, bearer, createTenantWithUsers, expectProblem } from './helpers/factories.ts';

// CORS on the HTTP API (docs/CONFIG.md, PARLEY_ALLOWED_ORIGINS; docs/API.md, "Browsers on another origin"):
// one app allowing any origin (the variable unset), one allowing a list, on the same database.

const APP_ORIGIN = 'https://app.example.com';
const OTHER_ORIGIN = 'https://evil.example';

let anyOrigin: TestApp;
let listed: TestApp;

beforeAll(async () => {
  anyOrigin = await buildTestApp(await createTestDatabase());
  listed = await buildTestApp(anyOrigin.database, {
    realtime: { allowedOrigins: [APP_ORIGIN], wsMaxConnectionsPerUser: 20, wsMaxFramesPerSecond: 20 },
    // One read per user, for a 429 at the second.
    rateLimits: { ...DEFAULT_RATE_LIMITS, user: { ...DEFAULT_RATE_LIMITS.user, reads: 1 } },
    adminToken: anyOrigin.adminToken,
    serverKey: anyOrigin.serverKey,
  });
});

afterAll(async () => {
  await listed.app.close();
  await anyOrigin.app.close();
  await anyOrigin.database.drop();
});

/** A header's comma-separated values, lowercased; none when it is absent. */
const listOf = (header: unknown) =>
  typeof header === 'string' ? header.split(',').map((value) => value.trim().toLowerCase()) : [];

/** The preflight a browser sends before `method` on `url` with these (non-safelisted) headers. */
function preflight(t: TestApp, url: string, method: string, headers: string[], origin = APP_ORIGIN) {
  return t.app.inject({
    method: 'OPTIONS',
    url,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': headers.join(','),
    },
  });
}

describe('CORS with any origin allowed (PARLEY_ALLOWED_ORIGINS unset)', () => {
  it('answers a request from a browser with Access-Control-Allow-Origin: *, without credentials mode', async () => {
    const response = await anyOrigin.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: APP_ORIGIN },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('lets browser code read the request id, the replay mark, the rate limits and tus positions', async () => {
    const response = await anyOrigin.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: APP_ORIGIN },
    });
    expect(listOf(response.headers['access-control-expose-headers'])).toEqual(
      expect.arrayContaining([
        'x-request-id',
        'idempotent-replayed',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
        'location',
        'etag',
        'content-range',
        'content-disposition',
        'upload-offset',
        'upload-length',
        'upload-expires',
        'tus-resumable',
      ]),
    );
  });

  it('sends no CORS headers to a caller without Origin (a server, a mobile app)', async () => {
    const response = await anyOrigin.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    expect(response.headers['access-control-expose-headers']).toBeUndefined();
  });

  it('answers the preflight of a send (204) with the methods and headers it allows', async () => {
    const response = await preflight(anyOrigin, `/v1/conversations/${randomUUID()}/messages`, 'POST', [
      'authorization',
      'idempotency-key',
      'content-type',
    ]);
    expect(response.statusCode, response.body).toBe(204);
    expect(response.body).toBe('');
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(listOf(response.headers['access-control-allow-methods'])).toEqual(
      expect.arrayContaining(['get', 'head', 'post', 'put', 'patch', 'delete', 'options']),
    );
    expect(listOf(response.headers['access-control-allow-headers'])).toEqual(
      expect.arrayContaining([
        'authorization',
        'idempotency-key',
        'content-type',
        'x-parley-user',
        'x-request-id',
      ]),
    );
    expect(response.headers['access-control-max-age']).toBe('600');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('makes refusals readable: a 401 problem carries Access-Control-Allow-Origin', async () => {
    const response = await anyOrigin.app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { origin: APP_ORIGIN, ...bearer('psk_not_a_key') },
    });
    expectProblem(response, 401, 'unauthorized');
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(listOf(response.headers['access-control-expose-headers'])).toContain('x-request-id');
  });

  it('keeps the OPTIONS route that answers preflights out of the OpenAPI document', () => {
    const paths = anyOrigin.app.swagger().paths ?? {};
    const withOptions = Object.keys(paths).filter((path) => paths[path]?.options !== undefined);
    expect(withOptions).toEqual(['/v1/uploads']);
  });

  it('leaves an OPTIONS that is no preflight to its route: 404 where there is none', async () => {
    const response = await anyOrigin.app.inject({
      method: 'OPTIONS',
      url: '/v1/me',
      headers: { origin: APP_ORIGIN },
    });
    expectProblem(response, 404, 'not_found');
  });
});

describe('CORS on the tus endpoints', () => {
  const tusHeaders = ['authorization', 'x-parley-user', 'tus-resumable', 'upload-length', 'upload-metadata'];

  it('answers the preflights of a creation, a PATCH and a HEAD itself, without reaching tus', async () => {
    for (const [url, method, headers] of [
      ['/v1/uploads', 'POST', tusHeaders],
      [
        `/v1/uploads/${randomUUID()}`,
        'PATCH',
        [...tusHeaders, 'upload-offset', 'upload-checksum', 'content-type'],
      ],
      [`/v1/uploads/${randomUUID()}`, 'HEAD', ['authorization', 'tus-resumable']],
    ] as const) {
      const response = await preflight(anyOrigin, url, method, [...headers]);
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(204);
      expect(response.headers['access-control-allow-origin']).toBe('*');
      expect(listOf(response.headers['access-control-allow-methods'])).toContain(method.toLowerCase());
      expect(listOf(response.headers['access-control-allow-headers'])).toEqual(
        expect.arrayContaining([...headers]),
      );
      expect(response.headers['tus-version']).toBeUndefined();
    }
  });

  it('still answers tus discovery (OPTIONS without Access-Control-Request-Method), with the API CORS headers', async () => {
    const response = await anyOrigin.app.inject({
      method: 'OPTIONS',
      url: '/v1/uploads',
      headers: { origin: APP_ORIGIN },
    });
    expect(response.statusCode, response.body).toBe(204);
    expect(response.headers['tus-version']).toBe('1.0.0');
    expect(response.headers['access-control-allow-origin']).toBe('*');
    // tus' own CORS answer (its methods, headers and max age) is not the API's.
    expect(response.headers['access-control-allow-methods']).toBeUndefined();
    expect(response.headers['access-control-max-age']).toBeUndefined();
  });

  it('lets a browser read where a created upload is', async () => {
    const tenant = await createTenantWithUsers(anyOrigin, 'ann');
    const response = await anyOrigin.app.inject({
      method: 'POST',
      url: '/v1/uploads',
      headers: {
        ...actingAs(tenant, 'ann'),
        origin: APP_ORIGIN,
        'tus-resumable': '1.0.0',
        'upload-length': '5',
        'upload-metadata': `filename ${Buffer.from('a.txt').toString('base64')}`,
      },
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.headers.location).toMatch(/^\/v1\/uploads\//);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(listOf(response.headers['access-control-expose-headers'])).toEqual(
      expect.arrayContaining(['location', 'upload-expires', 'tus-resumable']),
    );
  });
});

describe('CORS with a list of origins (PARLEY_ALLOWED_ORIGINS)', () => {
  it('echoes an allowed origin, with Vary: Origin', async () => {
    const response = await listed.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: APP_ORIGIN },
    });
    expect(response.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(listOf(response.headers.vary)).toContain('origin');
  });

  it('gives any other origin no Access-Control-Allow-Origin, so the browser refuses the answer', async () => {
    const response = await listed.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: OTHER_ORIGIN },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    expect(listOf(response.headers.vary)).toContain('origin');
  });

  it('answers preflights for the allowed origin only', async () => {
    const url = `/v1/conversations/${randomUUID()}/messages`;
    const headers = ['authorization', 'idempotency-key', 'content-type'];
    const allowed = await preflight(listed, url, 'POST', headers);
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    const refused = await preflight(listed, url, 'POST', headers, OTHER_ORIGIN);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets the allowed origin read a 429 and when to retry', async () => {
    const tenant = await createTenantWithUsers(listed, 'ann');
    const headers = { ...actingAs(tenant, 'ann'), origin: APP_ORIGIN };
    expect((await listed.app.inject({ method: 'GET', url: '/v1/me', headers })).statusCode).toBe(200);
    const refused = await listed.app.inject({ method: 'GET', url: '/v1/me', headers });
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(listOf(refused.headers['access-control-expose-headers'])).toContain('retry-after');
  });

  it('lets any origin read a file link: the link is the credential', async () => {
    const response = await listed.app.inject({
      method: 'GET',
      url: '/v1/files/not-a-signed-link',
      headers: { origin: OTHER_ORIGIN },
    });
    expectProblem(response, 403, 'forbidden');
    expect(response.headers['access-control-allow-origin']).toBe('*');
  });
});
