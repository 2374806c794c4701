import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';
import { freePort, startRedis } from './helpers/redis.ts';
import { TestSocket } from './helpers/ws-client.ts';

const ADMIN = 'multi-process-credentials-operator';
const running: ServerProcess[] = [];
let redis: ChildProcess | null = null;

afterAll(() => {
  for (const server of running) server.child.kill('SIGKILL');
  redis?.kill('SIGKILL');
});

async function api(base: string, method: string, path: string, token: string, body?: object) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

interface Key {
  id: string;
  secret: string;
}

/** A user token the tenant signs itself. */
function sign(key: Key, userId: string, seconds = 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: key.id })
    .setSubject(userId)
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(key.secret));
}

async function connect(base: string, token: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${base.replace('http', 'ws')}/v1/ws?access_token=${token}`);
  await socket.waitFor((frame) => frame.type === 'ready');
  return socket;
}

/** The close code and reason, once the socket closes (or a rejection after `timeoutMs`). */
function closeOf(socket: TestSocket, timeoutMs: number): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket did not close in ${timeoutMs} ms`)), timeoutMs);
    socket.socket.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

describeWithPostgres('credentials end sockets on every process (three processes, PostgreSQL, Redis)', () => {
  it('closes with 4401 on revocation, tenant deletion, erasure and expiry, and without Redis', async () => {
    const database = await createServerDatabase();
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    try {
      const env = {
        DATABASE_URL: database.url,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        PARLEY_ADMIN_TOKEN: ADMIN,
        PARLEY_SECRET_KEY: 'multi-process-credentials-server-key-0123456789',
      };
      running.push(await startServer({ ...env, PARLEY_DATA_DIR: tempDataDir() }));
      running.push(
        ...(await Promise.all([1, 2].map(() => startServer({ ...env, PARLEY_DATA_DIR: tempDataDir() })))),
      );
      const [a, b, c] = running.map((server) => server.url);
      if (a === undefined || b === undefined || c === undefined) throw new Error('servers missing');

      const newTenant = async () => {
        const created = await api(a, 'POST', '/v1/admin/tenants', ADMIN, { name: 'creds' });
        const tenantId = (created.body.tenant as { id: string }).id;
        return { tenantId, key: created.body.api_key as Key };
      };
      const { tenantId, key: first } = await newTenant();
      const second = (await api(a, 'POST', `/v1/admin/tenants/${tenantId}/api-keys`, ADMIN))
        .body as unknown as Key;

      // Revoking a key on A closes the sockets its tokens opened on B and C; another key's stays open.
      const aliceOnB = await connect(b, await sign(first, 'alice'));
      const aliceOnC = await connect(c, await sign(first, 'alice'));
      const bobOnB = await connect(b, await sign(second, 'bob'));
      const revokedClosed = [closeOf(aliceOnB, 5000), closeOf(aliceOnC, 5000)];
      expect(
        (await api(a, 'DELETE', `/v1/admin/tenants/${tenantId}/api-keys/${first.id}`, ADMIN)).status,
      ).toBe(200);
      for (const closed of revokedClosed)
        expect(await closed).toEqual({ code: 4401, reason: 'api key has been revoked' });
      bobOnB.send({ type: 'ping', ref: 'still' });
      await bobOnB.waitFor((frame) => frame.ref === 'still');

      // Erasing a user on A closes that user's sockets on B and C.
      const daveOnB = await connect(b, await sign(second, 'dave'));
      const daveOnC = await connect(c, await sign(second, 'dave'));
      const erasedClosed = [closeOf(daveOnB, 5000), closeOf(daveOnC, 5000)];
      expect((await api(a, 'DELETE', '/v1/users/dave', second.secret)).status).toBe(204);
      for (const closed of erasedClosed)
        expect(await closed).toEqual({ code: 4401, reason: 'user has been erased' });

      // A token's expiry closes its socket, wherever it is.
      const carolOnC = await connect(c, await sign(second, 'carol', 3));
      expect(await closeOf(carolOnC, 6000)).toEqual({ code: 4401, reason: 'token has expired' });

      // Deleting the tenant on A closes its remaining sockets on B.
      const tenantClosed = closeOf(bobOnB, 5000);
      expect((await api(a, 'DELETE', `/v1/admin/tenants/${tenantId}`, ADMIN)).status).toBe(204);
      expect(await tenantClosed).toEqual({ code: 4401, reason: 'tenant has been deleted' });

      // With Redis down, the revocation does not travel: B and C find it in the database within the
      // 10 s credential check.
      const other = await newTenant();
      const onB = await connect(b, await sign(other.key, 'erin'));
      const onC = await connect(c, await sign(other.key, 'erin'));
      redis.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      const quietClosed = [closeOf(onB, 15_000), closeOf(onC, 15_000)];
      expect(
        (await api(a, 'DELETE', `/v1/admin/tenants/${other.tenantId}/api-keys/${other.key.id}`, ADMIN))
          .status,
      ).toBe(200);
      // B has not heard of it, but a frame arriving now is refused: the frame asks the database itself.
      onB.send({ type: 'send', ref: 'late', conversation_id: randomUUID(), text: 'after the revocation' });
      expect(await onB.waitFor((frame) => frame.ref === 'late')).toMatchObject({
        type: 'error',
        code: 'unauthorized',
      });
      for (const closed of quietClosed) {
        expect(await closed).toEqual({
          code: 4401,
          reason: 'api key has been revoked or its tenant deleted',
        });
      }
      console.log(
        `multi-process: with Redis down, sockets closed ${Date.now() - started} ms after the revocation`,
      );
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
