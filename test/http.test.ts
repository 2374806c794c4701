import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { bearer, createTenant, expectProblem } from './helpers/factories.ts';

const t = useTestApp();

describe('errors are problem+json', () => {
  it('answers unknown routes with 404 not_found', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/no-such-route?x=1' });
    const problem = expectProblem(response, 404, 'not_found');
    expect(problem.detail).toBe('no route GET /v1/no-such-route');
  });

  it('reports every invalid field with its path, and writes nothing', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/bob',
      headers: bearer(tenant.apiKey.secret),
      payload: { nmae: 'typo', name: '', avatar_url: 'ftp://x' },
    });
    const problem = expectProblem(response, 400, 'validation_failed');
    const paths = (problem as unknown as { errors: { path: string }[] }).errors.map((error) => error.path);
    // One error per field, the telling one: not "must be null" for a nullable field.
    expect([...paths].sort()).toEqual(['/body/avatar_url', '/body/name', '/body/nmae']);
    const avatar = (problem as unknown as { errors: { path: string; message: string }[] }).errors.find(
      (error) => error.path === '/body/avatar_url',
    );
    expect(avatar?.message).toMatch(/pattern/);
    const lookup = await t.app.inject({
      method: 'GET',
      url: '/v1/users/bob',
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(lookup, 404, 'not_found');
  });

  it('keeps the answer to a large bad request small: 100 field errors, bounded texts', async () => {
    const tenant = await createTenant(t);
    const longKey = 'k'.repeat(5000);
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: { ...bearer(tenant.apiKey.secret), 'x-parley-user': 'alice' },
      // 1,000 bad member ids and a property whose name alone is 5,000 characters.
      payload: {
        type: 'group',
        members: Array.from({ length: 1000 }, (_, i) => `bad id ${i}`),
        [longKey]: 1,
      },
    });
    const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
      detail: string;
      errors: { path: string; message: string }[];
    };
    expect(problem.errors).toHaveLength(100);
    expect(problem.detail.length).toBeLessThanOrEqual(2000);
    expect(Math.max(...problem.errors.map((error) => error.path.length))).toBeLessThanOrEqual(1024);
    expect(response.body.length).toBeLessThan(20_000);
  });

  it('names a bad path parameter', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'GET',
      url: `/v1/users/${'x'.repeat(129)}`,
      headers: bearer(tenant.apiKey.secret),
    });
    const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
      errors: { path: string }[];
    };
    expect(problem.errors[0]?.path).toBe('/params/user_id');
    const overlong = await t.app.inject({
      method: 'GET',
      url: `/v1/users/${'x'.repeat(5000)}`,
      headers: bearer(tenant.apiKey.secret),
    });
    expectProblem(overlong, 400, 'validation_failed');
    expect(overlong.headers['x-request-id']).toBeTruthy();
  });

  it('does not coerce body types', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/users/bob/tokens',
      headers: bearer(tenant.apiKey.secret),
      payload: { ttl_seconds: '3600' },
    });
    const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
      errors: { path: string }[];
    };
    expect(problem.errors.map((error) => error.path)).toContain('/body/ttl_seconds');
  });

  it('rejects malformed JSON with 400', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/bob',
      headers: { ...bearer(tenant.apiKey.secret), 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    expectProblem(response, 400, 'validation_failed');
  });

  it('rejects bodies over 1 MiB with 413', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/bob',
      headers: { ...bearer(tenant.apiKey.secret), 'content-type': 'application/json' },
      payload: JSON.stringify({ metadata: { blob: 'x'.repeat(1024 * 1024) } }),
    });
    expectProblem(response, 413, 'payload_too_large');
  });

  it('rejects bodies that are not JSON with 415', async () => {
    const tenant = await createTenant(t);
    const response = await t.app.inject({
      method: 'PUT',
      url: '/v1/users/bob',
      headers: { ...bearer(tenant.apiKey.secret), 'content-type': 'text/plain' },
      payload: 'name=bob',
    });
    expectProblem(response, 415, 'unsupported_media_type');
  });

  it('answers authentication before validation, so strangers learn nothing about the schema', async () => {
    const response = await t.app.inject({ method: 'PUT', url: '/v1/users/bob', payload: { nmae: 1 } });
    expectProblem(response, 401, 'unauthorized');
  });
});

describe('request ids', () => {
  it('puts x-request-id on every response, errors included', async () => {
    const ok = await t.app.inject({ method: 'GET', url: '/healthz' });
    const missing = await t.app.inject({ method: 'GET', url: '/nope' });
    expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(missing.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.headers['x-request-id']).not.toBe(missing.headers['x-request-id']);
  });

  it('keeps a well-formed incoming x-request-id and replaces a malformed one', async () => {
    const kept = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'edge-42:abc' },
    });
    expect(kept.headers['x-request-id']).toBe('edge-42:abc');
    const replaced = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id\u0001' },
    });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('operations endpoints', () => {
  it('reports liveness and readiness', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', bus: 'ok' } });
  });

  it('exposes request counts and latency by route template in Prometheus format', async () => {
    await t.app.inject({ method: 'GET', url: '/v1/users/someone' });
    const response = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toMatch(
      /parley_http_requests_total\{method="GET",route="\/v1\/users\/:user_id",status_code="401"\} \d+/,
    );
    expect(response.body).toMatch(
      /parley_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/v1\/users\/:user_id"/,
    );
    expect(response.body).toContain('parley_process_cpu_seconds_total');
  });

  it('serves a valid OpenAPI 3.1 document describing every /v1 route', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    expect(document.openapi).toBe('3.1.0');
    await SwaggerParser.validate(structuredClone(document) as never);
    for (const path of ['/v1/admin/tenants', '/v1/users/{user_id}', '/v1/me', '/v1/users/{user_id}/tokens']) {
      expect(Object.keys(document.paths)).toContain(path);
    }
    // Every event a webhook can carry, its body from the event contract.
    const webhooks = (document as unknown as { webhooks: Record<string, unknown> }).webhooks;
    expect(Object.keys(webhooks)).toEqual(
      expect.arrayContaining(['message.created', 'read.updated', 'webhook.test', 'webhook.disabled']),
    );
    const put = document.paths['/v1/users/{user_id}']?.put as { responses: Record<string, unknown> };
    expect(Object.keys(put.responses)).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '403', '500']),
    );
  });

  it('serves interactive docs', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
  });
});
