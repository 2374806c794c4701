import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from '../lib/report.ts';
import { ADMIN_TOKEN, createBenchDatabase, SERVER_KEY, startBenchServer } from '../lib/server.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A port nothing listens on now, so /readyz can only be answered by the server under test. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Milliseconds from spawning `npm start` to /readyz answering 200, on an existing embedded database. */
async function timeStart(dataDir: string, port: number): Promise<number> {
  const started = performance.now();
  const child = spawn('npm', ['start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      PARLEY_DATA_DIR: dataDir,
      PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
      PARLEY_SECRET_KEY: SERVER_KEY,
      LOG_LEVEL: 'warn',
      DATABASE_URL: '',
    },
    stdio: 'ignore',
    // Its own process group: npm does not pass SIGTERM on to the server it started, the group gets it.
    detached: true,
  });
  try {
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (response.status === 200) return performance.now() - started;
      } catch {
        // not listening yet
      }
      if (performance.now() - started > 60_000) throw new Error('server did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    });
  }
}

/** `npm start` on an existing embedded database, to /readyz 200 (median of several starts). */
export async function startup(_db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = { starts: isQuick ? 2 : 5 };
  const database = await createBenchDatabase('embedded');
  const first = await startBenchServer(database); // creates and migrates the database
  await first.stop();
  const times: number[] = [];
  for (let start = 0; start < params.starts; start++)
    times.push(await timeStart(database.dataDir, await freePort()));
  times.sort((a, b) => a - b);
  return {
    scenario: 'startup',
    db: 'embedded',
    params,
    figures: {
      ready_ms: times[Math.floor(times.length / 2)] ?? 0,
      fastest_ms: times[0] ?? 0,
      slowest_ms: times.at(-1) ?? 0,
    },
    targets: isQuick ? {} : { ready_ms: { max: 1500 } },
    notes: [
      'timed from spawning `npm start` (npm itself included), which runs the bundled dist/main.mjs when it is current',
    ],
  };
}
