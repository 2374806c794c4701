import type { ChildProcess } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';
import { freePort, startRedis } from './helpers/redis.ts';
import { TestSocket } from './helpers/ws-client.ts';

const ADMIN = 'multi-process-operator-token';
const running: ServerProcess[] = [];
let redis: ChildProcess | null = null;

afterAll(() => {
  for (const server of running) server.child.kill('SIGKILL');
  redis?.kill('SIGKILL');
});

async function api(base: string, method: string, path: string, token: string, body?: object, actAs?: string) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(actAs ? { 'x-parley-user': actAs } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describeWithPostgres('three server processes, one PostgreSQL, one Redis', () => {
  it('deliver across processes, share presence, and keep delivering through a Redis restart', async () => {
    const database = await createServerDatabase();
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    try {
      const env = {
        DATABASE_URL: database.url,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        PARLEY_ADMIN_TOKEN: ADMIN,
        PARLEY_SECRET_KEY: 'multi-process-shared-server-key-0123456789',
      };
      // The first process migrates; the others start on the migrated database.
      running.push(await startServer({ ...env, PARLEY_DATA_DIR: tempDataDir() }));
      running.push(
        ...(await Promise.all([1, 2].map(() => startServer({ ...env, PARLEY_DATA_DIR: tempDataDir() })))),
      );
      const [a, b, c] = running.map((server) => server.url);
      if (a === undefined || b === undefined || c === undefined) throw new Error('servers missing');

      const created = await api(a, 'POST', '/v1/admin/tenants', ADMIN, { name: 'multi' });
      const key = (created.body.api_key as { secret: string }).secret;
      for (const userId of ['alice', 'bob', 'carol']) await api(a, 'PUT', `/v1/users/${userId}`, key, {});
      const group = await api(
        a,
        'POST',
        '/v1/conversations',
        key,
        { type: 'group', members: ['bob', 'carol'] },
        'alice',
      );
      const conversationId = group.body.id as string;
      const token = async (userId: string) =>
        (await api(a, 'POST', `/v1/users/${userId}/tokens`, key)).body.token as string;
      const connect = async (base: string, userId: string) => {
        const socket = await TestSocket.open(
          `${base.replace('http', 'ws')}/v1/ws?access_token=${await token(userId)}`,
        );
        await socket.waitFor((frame) => frame.type === 'ready');
        return socket;
      };

      const bobOnB = await connect(b, 'bob');
      const carolOnC = await connect(c, 'carol');
      // Presence crosses processes: alice connecting on A is seen by bob on B.
      const aliceOnA = await connect(a, 'alice');
      expect(
        (
          await bobOnB.waitFor(
            (frame) => frame.event?.type === 'presence.changed' && frame.event.data.user_id === 'alice',
          )
        ).event?.data,
      ).toEqual({ user_id: 'alice', status: 'online' });

      // A message sent through A reaches sockets on B and C.
      aliceOnA.send({ type: 'send', ref: 's', conversation_id: conversationId, text: 'across processes' });
      await aliceOnA.waitFor((frame) => frame.ref === 's' && frame.type === 'ack');
      for (const socket of [bobOnB, carolOnC])
        await socket.waitFor((frame) => frame.event?.data.text === 'across processes');

      // Typing is ephemeral and crosses processes too.
      aliceOnA.send({ type: 'typing.start', conversation_id: conversationId });
      await carolOnC.waitFor((frame) => frame.event?.type === 'typing.started');

      // Redis goes away: delivery continues through the log (each process reads it without a wake-up).
      redis.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await api(
        b,
        'POST',
        `/v1/conversations/${conversationId}/messages`,
        key,
        { text: 'redis is down' },
        'bob',
      );
      await carolOnC.waitFor((frame) => frame.event?.data.text === 'redis is down', 10_000);
      await aliceOnA.waitFor((frame) => frame.event?.data.text === 'redis is down', 10_000);

      // Redis comes back on the same port: the processes reconnect and the fast path works again.
      redis = await startRedis(redisPort);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const before = Date.now();
      await api(
        c,
        'POST',
        `/v1/conversations/${conversationId}/messages`,
        key,
        { text: 'redis is back' },
        'carol',
      );
      await bobOnB.waitFor((frame) => frame.event?.data.text === 'redis is back', 10_000);
      console.log(`multi-process: delivery after the Redis restart took ${Date.now() - before} ms`);

      // Each socket saw each message exactly once, in seq order.
      for (const socket of [bobOnB, carolOnC, aliceOnA]) {
        await socket.waitFor((frame) => frame.event?.data.text === 'redis is back', 10_000);
        const seqs = socket
          .events()
          .filter((event) => event.type === 'message.created')
          .map((event) => event.seq);
        expect(seqs).toEqual([1, 2, 3]);
      }
      for (const socket of [bobOnB, carolOnC, aliceOnA]) await socket.close();
    } finally {
      for (const server of running.splice(0)) {
        server.child.kill('SIGTERM');
        await server.exited;
      }
      redis.kill('SIGKILL');
      await database.drop();
    }
  }, 120_000);
});
