import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerDatabase, describeWithPostgres } from './helpers/database.ts';
import { runCli, startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';

const running: ServerProcess[] = [];
afterAll(() => {
  for (const server of running) server.child.kill('SIGKILL');
});

async function start(env: Record<string, string>) {
  const server = await startServer(env);
  running.push(server);
  return server;
}

const adminStatus = async (url: string, token: string) =>
  (await fetch(`${url}/v1/admin/tenants`, { headers: { authorization: `Bearer ${token}` } })).status;

describe('a first start that fails', () => {
  it('keeps the generated operator token and demo api key in a file only the operator can read', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const dataDir = tempDataDir();
    try {
      // The port is taken: the server generates the credentials, then cannot listen, and says where they are.
      const failure = await startServer({ PARLEY_DATA_DIR: dataDir, PORT: String(port) }).then(
        () => new Error('the server started on a port in use'),
        (error: unknown) => error as Error,
      );
      expect(failure.message).toMatch(/exited with 1/);
      expect(failure.message).toMatch(/EADDRINUSE/);
      expect(failure.message).toMatch(/saved in \S*first-start-secrets\.txt/);
    } finally {
      blocker.close();
    }
    const file = path.join(dataDir, 'first-start-secrets.txt');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const operatorToken = /^operator_token=(padm_\S+)$/m.exec(text)?.[1] ?? '';
    const apiKey = /^demo_api_key=(psk_\S+)$/m.exec(text)?.[1] ?? '';
    expect(operatorToken).not.toBe('');
    expect(apiKey).not.toBe('');

    // The next start generates nothing new (that happens once per database), and what was saved works.
    const server = await start({ PARLEY_DATA_DIR: dataDir });
    expect(server.stdout()).not.toContain('padm_');
    expect(await adminStatus(server.url, operatorToken)).toBe(200);
    const users = await fetch(`${server.url}/v1/users`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(users.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 120_000);
});

describeWithPostgres('parley admin-token rotate', () => {
  it('issues an operator token that a running server accepts within seconds, and ends the old one', async () => {
    const database = await createServerDatabase();
    try {
      const env = { DATABASE_URL: database.url, PARLEY_DATA_DIR: tempDataDir() };
      const server = await start(env);
      const old = /^\s+(padm_\S+)$/m.exec(server.stdout())?.[1] ?? '';
      expect(await adminStatus(server.url, old)).toBe(200);

      const rotated = await runCli(['admin-token', 'rotate'], { DATABASE_URL: database.url });
      expect(rotated.code, rotated.stderr).toBe(0);
      const { operator_token: fresh } = JSON.parse(rotated.stdout) as { operator_token: string };
      expect(fresh).toMatch(/^padm_/);

      // No restart: the server reads the stored hash again within 5 seconds.
      let status = 0;
      for (let waited = 0; waited < 100 && status !== 200; waited += 1) {
        status = await adminStatus(server.url, fresh);
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe(200);
      expect(await adminStatus(server.url, old)).toBe(401);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await database.drop();
    }
  }, 120_000);
});
