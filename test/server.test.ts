import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';

const running: ServerProcess[] = [];
afterAll(() => {
  for (const server of running) server.child.kill('SIGKILL');
});

async function start(env: Record<string, string>) {
  const server = await startServer(env);
  running.push(server);
  return server;
}

async function stop(server: ServerProcess) {
  server.child.kill('SIGTERM');
  return server.exited;
}

/** The newcomer's path from the welcome text: mint a token with the printed key, then GET /v1/me. */
async function followWelcome(server: ServerProcess) {
  const apiKey = /^\s+(psk_\S+)$/m.exec(server.stdout())?.[1];
  const adminToken = /^\s+(padm_\S+)$/m.exec(server.stdout())?.[1];
  expect(apiKey, server.stdout()).toBeTruthy();
  expect(adminToken, server.stdout()).toBeTruthy();
  expect(server.stdout()).toContain(`curl -s -X POST ${server.url}/v1/users/alice/tokens`);
  const minted = await fetch(`${server.url}/v1/users/alice/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}` },
  });
  expect(minted.status).toBe(201);
  const { token } = (await minted.json()) as { token: string };
  const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  expect(me.status).toBe(200);
  expect(await me.json()).toMatchObject({ id: 'alice' });
  const tenants = await fetch(`${server.url}/v1/admin/tenants`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  expect(((await tenants.json()) as { data: { name: string }[] }).data.map((tenant) => tenant.name)).toEqual([
    'demo',
  ]);
  return { apiKey: apiKey ?? '', adminToken: adminToken ?? '' };
}

describe('npm start on the embedded database', () => {
  it('prints what a newcomer needs once, and keeps the data across restarts', async () => {
    const dataDir = tempDataDir();
    const first = await start({ PARLEY_DATA_DIR: dataDir });
    const { apiKey, adminToken } = await followWelcome(first);
    expect(await stop(first)).toBe(0);

    const second = await start({ PARLEY_DATA_DIR: dataDir });
    expect(second.stdout()).toContain('Parley is running at');
    expect(second.stdout()).not.toContain('psk_');
    expect(second.stdout()).not.toContain('padm_');
    const users = await fetch(`${second.url}/v1/users`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(((await users.json()) as { data: { id: string }[] }).data.map((user) => user.id)).toEqual([
      'alice',
    ]);
    const admin = await fetch(`${second.url}/v1/admin/tenants`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(admin.status).toBe(200);

    // One process at a time may open the embedded database.
    await expect(startServer({ PARLEY_DATA_DIR: dataDir })).rejects.toThrow(/in use by process/);
    expect(await stop(second)).toBe(0);
    // Three starts of a real server, the first making a fresh database (about 8 s alone on the 2-core VM):
    // more than the default 30 s when the other test files share the cores.
  }, 90_000);

  it('finishes in-flight requests on SIGTERM, refuses new ones, and exits 0', async () => {
    const server = await start({
      PARLEY_DATA_DIR: tempDataDir(),
      PARLEY_ADMIN_TOKEN: 'operator-token-for-this-test',
    });
    const body = JSON.stringify({ name: 'in-flight tenant' });
    const { hostname, port } = new URL(server.url);
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(
        {
          hostname,
          port,
          method: 'POST',
          path: '/v1/admin/tenants',
          headers: {
            authorization: 'Bearer operator-token-for-this-test',
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      request.on('error', reject);
      // Half the body now, the rest after SIGTERM: the request is in flight while the server shuts down.
      request.write(body.slice(0, 10));
      setTimeout(() => {
        server.child.kill('SIGTERM');
        setTimeout(() => request.end(body.slice(10)), 500);
      }, 300);
    });
    const result = await response;
    expect(result.status, result.body).toBe(201);
    expect(JSON.parse(result.body)).toMatchObject({ tenant: { name: 'in-flight tenant' } });
    expect(await server.exited).toBe(0);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('refuses to start on invalid configuration, naming every problem', async () => {
    await expect(
      startServer(
        { PARLEY_DATA_DIR: tempDataDir(), PORT: 'x', LOG_LEVEL: 'loud', PARLEY_SECRET_KEY: 'short' },
        20_000,
      ),
    ).rejects.toThrow(/exited with 1[\s\S]*PORT[\s\S]*PARLEY_SECRET_KEY[\s\S]*LOG_LEVEL/);
  });
});

describeWithPostgres('npm start with DATABASE_URL', () => {
  it('runs on PostgreSQL with the same first-start experience', async () => {
    const database = await createServerDatabase();
    try {
      const env = { DATABASE_URL: database.url, PARLEY_DATA_DIR: tempDataDir() };
      const first = await start(env);
      const { apiKey } = await followWelcome(first);
      expect(await stop(first)).toBe(0);
      const second = await start(env);
      expect(second.stdout()).not.toContain('psk_');
      const users = await fetch(`${second.url}/v1/users`, { headers: { authorization: `Bearer ${apiKey}` } });
      expect(users.status).toBe(200);
      expect(await stop(second)).toBe(0);
    } finally {
      await database.drop();
    }
  });
});
