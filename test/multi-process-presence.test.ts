import type { ChildProcess } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';
import { freePort, startRedis } from './helpers/redis.ts';
import { TestSocket, type ServerFrame } from './helpers/ws-client.ts';

const ADMIN = 'multi-process-presence-operator';
const running: ServerProcess[] = [];
let redis: ChildProcess | null = null;

afterAll(() => {
  for (const server of running) server.child.kill('SIGKILL');
  redis?.kill('SIGKILL');
});

async function api(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: object,
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

describeWithPostgres('presence of a process killed with -9 (two processes, PostgreSQL, Redis)', () => {
  it('expires: the other process announces its users offline after the TTL, not the offline grace', async () => {
    const database = await createServerDatabase();
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    try {
      // A grace far longer than the test: an `offline` within it can only come from the expired entry.
      const env = {
        DATABASE_URL: database.url,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        PARLEY_ADMIN_TOKEN: ADMIN,
        PARLEY_SECRET_KEY: 'multi-process-presence-server-key-0123456789',
        PARLEY_PRESENCE_TTL_SECONDS: '3',
        PARLEY_PRESENCE_OFFLINE_GRACE_SECONDS: '600',
      };
      const [doomed, survivor] = await Promise.all(
        [1, 2].map(() => startServer({ ...env, PARLEY_DATA_DIR: tempDataDir() })),
      );
      if (doomed === undefined || survivor === undefined) throw new Error('servers missing');
      running.push(doomed, survivor);

      const created = await api(
        survivor.url,
        'POST',
        '/v1/admin/tenants',
        { authorization: `Bearer ${ADMIN}` },
        {
          name: 'presence',
        },
      );
      const secret = (created.body.api_key as { secret: string }).secret;
      const asBackend = { authorization: `Bearer ${secret}` };
      for (const userId of ['alice', 'bob'])
        expect((await api(survivor.url, 'PUT', `/v1/users/${userId}`, asBackend, {})).status).toBe(201);
      const group = await api(
        survivor.url,
        'POST',
        '/v1/conversations',
        { ...asBackend, 'x-parley-user': 'alice' },
        { type: 'group', members: ['bob'] },
      );
      expect(group.status).toBe(201);
      const tokenOf = async (userId: string) =>
        (await api(survivor.url, 'POST', `/v1/users/${userId}/tokens`, asBackend, {})).body.token as string;

      const bob = await TestSocket.open(
        `${survivor.url.replace('http', 'ws')}/v1/ws?access_token=${await tokenOf('bob')}`,
      );
      await bob.waitFor((frame) => frame.type === 'ready');
      const alice = await TestSocket.open(
        `${doomed.url.replace('http', 'ws')}/v1/ws?access_token=${await tokenOf('alice')}`,
      );
      await alice.waitFor((frame) => frame.type === 'ready');
      const isAbout = (status: 'online' | 'offline') => (frame: ServerFrame) => {
        const event = frame.event as
          { type?: string; data?: { user_id?: string; status?: string } } | undefined;
        return (
          event?.type === 'presence.changed' &&
          event.data?.user_id === 'alice' &&
          event.data.status === status
        );
      };
      await bob.waitFor(isAbout('online'), 10_000);

      const killedAt = Date.now();
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      // Within the TTL (3 s) and a renewal period (under 1 s), where the 600 s grace would take ten minutes.
      await bob.waitFor(isAbout('offline'), 15_000);
      const afterMs = Date.now() - killedAt;
      console.log(`multi-process presence: alice offline ${afterMs} ms after her process was killed with -9`);
      await bob.close();
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
