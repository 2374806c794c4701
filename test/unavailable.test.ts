import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.ts';
import { isUnreachableError } from '../src/errors.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { startCuttableProxy, type CuttableProxy } from './helpers/cuttable-proxy.ts';
import {
  actingAs,
  bearer,
  createTenant,
  expectProblem,
  mintUserToken,
  putUser,
} from './helpers/factories.ts';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { TestSocket } from './helpers/ws-client.ts';

describe('what counts as unreachable', () => {
  it('knows connection failures from bugs, through the wrappers they come in', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      '08006',
      '08001',
      '57P01',
      '57P02',
      '57P03',
    ])
      expect(isUnreachableError(Object.assign(new Error('x'), { code })), code).toBe(true);
    expect(isUnreachableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnreachableError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    // Drizzle wraps the driver's error; Node wraps the attempts on several addresses.
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(isUnreachableError(new Error('Failed query: select 1', { cause: refused }))).toBe(true);
    expect(isUnreachableError(new AggregateError([refused], ''))).toBe(true);
    // Bugs and bad input stay what they are.
    for (const code of ['23505', '22P02', '42P01', '40001', 'ERR_ASSERTION'])
      expect(isUnreachableError(Object.assign(new Error('x'), { code })), code).toBe(false);
    expect(isUnreachableError(new TypeError('cannot read properties of undefined'))).toBe(false);
    expect(isUnreachableError(null)).toBe(false);
  });
});

describeWithPostgres('a database that cannot be reached', () => {
  let proxy: CuttableProxy;
  let t: TestApp;
  let base = '';
  let server: { url: string; drop: () => Promise<void> };

  beforeAll(async () => {
    server = await createServerDatabase();
    const direct = new URL(server.url);
    proxy = await startCuttableProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const proxied = new URL(server.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const db = await openDatabase({ databaseUrl: proxied.toString(), poolSize: 2 });
    t = await buildTestApp({ db, url: proxied.toString(), drop: () => db.close() });
    base = await listenForSockets(t);
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
    await proxy.close();
    await server.drop();
  });

  it('answers 503 unavailable with Retry-After, over HTTP and on sockets, then recovers', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'alice');
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(tenant, 'alice'),
      payload: { type: 'group', members: [] },
    });
    expect(created.statusCode, created.body).toBe(201);
    const conversationId = created.json<{ id: string }>().id;
    const socket = await TestSocket.open(
      `${base}/v1/ws?access_token=${await mintUserToken(t, tenant, 'alice')}`,
    );
    await socket.waitFor((frame) => frame.type === 'ready');

    // Both pooled connections open and idle when the database goes: each will die under a `BEGIN`.
    const concurrent = await Promise.all(
      [1, 2, 3, 4].map(() =>
        t.app.inject({ method: 'GET', url: '/v1/conversations', headers: actingAs(tenant, 'alice') }),
      ),
    );
    expect(concurrent.map((response) => response.statusCode)).toEqual([200, 200, 200, 200]);
    await proxy.cut();
    // The first requests die in flight on pooled connections; the later ones are refused at connect.
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const send = await t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/messages`,
        headers: actingAs(tenant, 'alice'),
        payload: { text: `while the database is away ${attempt}` },
      });
      const problem = expectProblem(send, 503, 'unavailable');
      expect(problem.detail).not.toMatch(/ECONN|terminated|127\.0\.0\.1/);
      expect(send.headers['retry-after']).toBe('1');
    }
    const readiness = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(readiness.statusCode).toBe(503);
    expect(readiness.json()).toEqual({ status: 'unavailable', checks: { database: 'error', bus: 'ok' } });
    const admin = await t.app.inject({
      method: 'GET',
      url: '/v1/admin/tenants',
      headers: bearer(t.adminToken),
    });
    expectProblem(admin, 503, 'unavailable');
    const sent = socket.frames.length;
    socket.send({ type: 'send', ref: 's1', conversation_id: conversationId, text: 'over the socket' });
    expect(await socket.waitFor((frame) => frame.type === 'error', 5000, sent)).toMatchObject({
      ref: 's1',
      code: 'unavailable',
    });

    // Back: no connection was lost to the pool (it holds 2, and more requests than that failed), so every
    // request is served again, and the pool closes (afterAll) without waiting on a leaked connection.
    await proxy.restore();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const after = await t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/messages`,
        headers: actingAs(tenant, 'alice'),
        payload: { text: `the database is back ${attempt}` },
      });
      expect(after.statusCode, after.body).toBe(201);
    }
    const acked = socket.frames.length;
    socket.send({ type: 'send', ref: 's2', conversation_id: conversationId, text: 'over the socket again' });
    expect(await socket.waitFor((frame) => frame.ref === 's2', 5000, acked)).toMatchObject({ type: 'ack' });
    await socket.close();
  });

  it('loses no pooled connection to a BEGIN on a connection that died silently', async () => {
    const proxied = new URL(server.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const db = await openDatabase({ databaseUrl: proxied.toString(), poolSize: 1 });
    try {
      const begin = () => db.orm.transaction(async (tx) => tx.execute(sql`SELECT 1`));
      await begin();
      // The one pooled connection is idle and looks alive; the first thing sent on it is the BEGIN.
      await proxy.cut();
      const failed = await begin().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isUnreachableError(failed)).toBe(true);
      await proxy.restore();
      // With that connection still checked out, this would wait for the pool forever.
      await begin();
    } finally {
      await db.close();
    }
  });

  it('classifies a backend terminated by the administrator (57P01), as Drizzle reports it', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    client.on('error', () => {});
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const sleeping = drizzle({ client }).execute(sql`SELECT pg_sleep(10)`);
      const failure = sleeping.then(
        () => undefined,
        (error: unknown) => error,
      );
      // Wait until the sleep is running, then end that backend as an administrator would.
      for (;;) {
        const active = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%' AND state = 'active'",
          [rows[0]?.pid],
        );
        if (active.rowCount) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
      const error = await failure;
      expect(error).toBeInstanceOf(Error);
      expect(isUnreachableError(error)).toBe(true);
    } finally {
      await admin.end();
      await client.end().catch(() => undefined);
    }
  });
});
