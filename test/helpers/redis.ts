import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { describe } from 'vitest';

/** The Redis server of this run, when there is one (CI sets it). Tests key everything by fresh tenants. */
export const REDIS_URL = process.env.REDIS_URL;

/**
 * A describe block that needs a Redis server shared by two app instances: it runs when REDIS_URL is set and
 * is skipped with a printed reason otherwise, like describeWithPostgres.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (REDIS_URL === undefined) {
    console.log(`skipped "${name}": it needs a Redis server; set REDIS_URL to run it`);
  }
  describe.skipIf(REDIS_URL === undefined)(name, body);
}

/** Whether `redis-server` is on the PATH (tests that need a Redis of their own skip without it). */
export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A Redis of the test's own on `port`, so it can be stopped without touching anyone else's. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis did not start')), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return child;
}
