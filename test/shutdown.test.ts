import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, ROOT, startServer, tempDataDir } from './helpers/processes.ts';
import { freePort } from './helpers/redis.ts';

/** The shutdown budget of src/main.ts, and a little for the process to be reaped. */
const BUDGET_MS = 10_000;
const REAPED_MS = 2_000;

const children: { kill: (signal: NodeJS.Signals) => boolean }[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** The exit code, or 'still running' when the process has not exited within the budget. */
function exitWithinBudget(exited: Promise<number | null>): Promise<number | null | 'still running'> {
  return Promise.race([
    exited,
    new Promise<'still running'>((resolve) =>
      setTimeout(() => resolve('still running'), BUDGET_MS + REAPED_MS),
    ),
  ]);
}

describe('SIGTERM when nobody reads the logs', () => {
  it('exits 0 when stdout and stderr are broken pipes', async () => {
    const server = await startServer({
      PARLEY_DATA_DIR: tempDataDir(),
      PARLEY_ADMIN_TOKEN: 'operator-token-for-this-test',
      LOG_LEVEL: 'debug',
    });
    children.push(server.child);
    // The reading ends go away: every write of the server from now on meets EPIPE.
    server.child.stdout.destroy();
    server.child.stderr.destroy();
    for (let i = 0; i < 20; i += 1) expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await exitWithinBudget(server.exited)).toBe(0);
  }, 90_000);

  it('exits 0 when stdout and stderr are a pipe that is full and never read', async () => {
    const dataDir = tempDataDir();
    const fifo = path.join(dataDir, 'logs.fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader holds the pipe open and never reads: once its 64 KiB are full, every write would block.
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writer = fs.openSync(fifo, 'w');
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/start.mjs'], {
      cwd: ROOT,
      stdio: ['ignore', writer, writer],
      env: cleanEnv({
        PORT: String(port),
        LOG_LEVEL: 'debug',
        PARLEY_DATA_DIR: dataDir,
        PARLEY_ADMIN_TOKEN: 'operator-token-for-this-test',
      }),
    });
    children.push(child);
    fs.closeSync(writer);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let waited = 0; ; waited += 1) {
        const up = await fetch(`${base}/healthz`).then(
          () => true,
          () => false,
        );
        if (up) break;
        if (waited > 300) throw new Error('the server did not start');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // Far more log output than the pipe holds; the server keeps serving meanwhile.
      for (let round = 0; round < 20; round += 1) {
        const statuses = await Promise.all(
          Array.from({ length: 20 }, () => fetch(`${base}/healthz`).then((response) => response.status)),
        );
        expect(statuses.every((status) => status === 200)).toBe(true);
      }
      child.kill('SIGTERM');
      expect(await exitWithinBudget(exited)).toBe(0);
    } finally {
      fs.closeSync(reader);
    }
  }, 90_000);
});
