import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { bearer, expectProblem } from './helpers/factories.ts';

// The web demo's server side (docs/DEMO.md), without a browser: off unless asked for, a sign-in limited to
// its users and its own tenant, bad input refused, and one tenant however many sign in at once.

describe('the web demo routes', () => {
  let on: TestApp;
  let off: TestApp;
  beforeAll(async () => {
    on = await buildTestApp(await createTestDatabase(), { demo: { enabled: true } });
    off = await buildTestApp(await createTestDatabase());
  });
  afterAll(async () => {
    for (const t of [on, off]) {
      await t.app.close();
      await t.database.drop();
    }
  });

  it('does not exist when the demo is off', async () => {
    for (const [method, url] of [
      ['GET', '/demo/'],
      ['GET', '/demo/users'],
      ['POST', '/demo/session'],
    ] as const) {
      const response = await off.app.inject({
        method,
        url,
        payload: method === 'POST' ? { user_id: 'alice' } : undefined,
      });
      expect(response.statusCode, url).toBe(404);
    }
  });

  it('signs in as a demo user, in one tenant of its own, however many sign in at once', async () => {
    const sessions = await Promise.all(
      ['alice', 'bob', 'carol', 'dave', 'alice'].map((user_id) =>
        on.app.inject({ method: 'POST', url: '/demo/session', payload: { user_id } }),
      ),
    );
    for (const session of sessions) expect(session.statusCode, session.body).toBe(201);
    const tokens = sessions.map((s) => s.json<{ token: string; user_id: string }>());
    const me = await on.app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tokens[0]?.token ?? '') });
    expect(me.json()).toMatchObject({ id: 'alice', name: 'Alice Martin' });
    const tenants = await on.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(on.adminToken),
    });
    expect(tenants.json<{ data: { name: string }[] }>().data.map((t) => t.name)).toEqual(['web demo']);
    // The seeded conversations, seen by bob.
    const list = await on.app.inject({
      method: 'GET',
      url: '/v1/conversations',
      headers: bearer(tokens[1]?.token ?? ''),
    });
    expect(
      list
        .json<{ data: { name: string }[] }>()
        .data.map((c) => c.name)
        .sort(),
    ).toEqual(['design', 'general']);
    const users = await on.app.inject({ method: 'GET', url: '/demo/users' });
    expect(users.json<{ users: { id: string }[] }>().users.map((u) => u.id)).toEqual([
      'alice',
      'bob',
      'carol',
      'dave',
    ]);
  });

  it('refuses anyone but its users, and bad input, with a problem', async () => {
    for (const payload of [{ user_id: 'mallory' }, {}, { user_id: 'alice', extra: 1 }, { user_id: 3 }]) {
      const response = await on.app.inject({ method: 'POST', url: '/demo/session', payload });
      expectProblem(response, 400, 'validation_failed');
    }
    const notJson = await on.app.inject({
      method: 'POST',
      url: '/demo/session',
      headers: { 'content-type': 'text/plain' },
      payload: 'alice',
    });
    expectProblem(notJson, 415, 'unsupported_media_type');
  });

  it('sets up its tenant again when an operator deleted it', async () => {
    const tenants = await on.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(on.adminToken),
    });
    const [demoTenant] = tenants.json<{ data: { id: string }[] }>().data;
    const deleted = await on.app.inject({
      method: 'DELETE',
      url: `/v1/admin/tenants/${demoTenant?.id ?? ''}`,
      headers: bearer(on.adminToken),
    });
    expect(deleted.statusCode).toBe(204);
    const session = await on.app.inject({
      method: 'POST',
      url: '/demo/session',
      payload: { user_id: 'bob' },
    });
    expect(session.statusCode, session.body).toBe(201);
    const me = await on.app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: bearer(session.json<{ token: string }>().token),
    });
    expect(me.statusCode).toBe(200);
    const after = await on.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(on.adminToken),
    });
    const ids = after.json<{ data: { id: string }[] }>().data.map((t) => t.id);
    expect(ids).toHaveLength(1);
    expect(ids).not.toContain(demoTenant?.id);
  });
});
