import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisBus } from '../src/realtime/bus.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { actingAs, createTenant, mintUserToken, putUser } from './helpers/factories.ts';
import { freePort, hasRedisServer, startRedis } from './helpers/redis.ts';
import { TestSocket } from './helpers/ws-client.ts';

let redis: ChildProcess | null = null;
let t: TestApp | null = null;
afterAll(async () => {
  redis?.kill('SIGKILL');
  await t?.app.close();
  await t?.database.drop();
});

if (!hasRedisServer) console.log('skipped "/readyz with Redis down": redis-server is not on the PATH');

describe.skipIf(!hasRedisServer)('/readyz with Redis down', () => {
  it('answers 200 degraded, naming the bus, while events still reach sockets', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const bus = createRedisBus(`redis://127.0.0.1:${port}`, () => {});
    t = await buildTestApp(await createTestDatabase(), { bus });
    const app = t.app;
    const base = await listenForSockets(t);

    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', bus: 'ok' } });

    const tenant = await createTenant(t);
    for (const userId of ['alice', 'bob']) await putUser(t, tenant, userId);
    const created = await app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(tenant, 'alice'),
      payload: { type: 'group', members: ['bob'] },
    });
    const conversationId = created.json<{ id: string }>().id;
    const bob = await TestSocket.open(`${base}/v1/ws?access_token=${await mintUserToken(t, tenant, 'bob')}`);
    await bob.waitFor((frame) => frame.type === 'ready');

    redis.kill('SIGKILL');
    await new Promise((resolve) => redis?.once('exit', resolve));
    const degraded = await app.inject({ method: 'GET', url: '/readyz' });
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json()).toEqual({ status: 'degraded', checks: { database: 'ok', bus: 'error' } });

    // Degraded, not down: a message sent now still reaches bob, through the periodic read of the log.
    const sent = await app.inject({
      method: 'POST',
      url: `/v1/conversations/${conversationId}/messages`,
      headers: actingAs(tenant, 'alice'),
      payload: { text: 'redis is down' },
    });
    expect(sent.statusCode, sent.body).toBe(201);
    await bob.waitFor((frame) => frame.event?.data.text === 'redis is down', 10_000);
    await bob.close();
  });
});
