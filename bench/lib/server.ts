import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ADMIN_TOKEN = 'bench-operator-token-0123456789';
export const SERVER_KEY = 'bench-server-key-0123456789-abcdefghij';

const BENCH_RATE_LIMITS = Object.fromEntries(
  ['USER', 'KEY'].flatMap((kind) =>
    ['READS', 'SENDS', 'WRITES', 'UPLOADS'].map((budget) => [
      `PARLEY_RATE_LIMIT_${kind}_${budget}`,
      '1000000000',
    ]),
  ),
);

/** Where a benchmark server keeps its data: a fresh embedded directory, or a fresh PostgreSQL database. */
export interface BenchDatabase {
  kind: 'embedded' | 'postgres';
  dataDir: string;
  url: string | undefined;
  drop(): Promise<void>;
}

/** A fresh database of the asked kind. PostgreSQL uses DATABASE_URL's server (default: local). */
export async function createBenchDatabase(kind: 'embedded' | 'postgres'): Promise<BenchDatabase> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  if (kind === 'embedded') return { kind, dataDir, url: undefined, drop: () => Promise.resolve() };
  const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `parley_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    kind,
    dataDir,
    url: url.toString(),
    drop: async () => {
      // BENCH_KEEP_DB=1 leaves the database for inspection (EXPLAIN ANALYZE of what the scenario ran).
      if (process.env.BENCH_KEEP_DB === '1') {
        console.log(`  kept database ${name} (BENCH_KEEP_DB=1)`);
        return;
      }
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** A server process, started the way `npm start` starts it. */
export interface BenchServer {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Starts the server as its own process (never in the generator's), on an ephemeral port. */
export async function startBenchServer(
  database: BenchDatabase,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the server there when it stops (open it in Chrome DevTools).
  const profileDir = process.env.BENCH_CPU_PROF;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      LOG_LEVEL: 'warn',
      PARLEY_DATA_DIR: database.dataDir,
      PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
      PARLEY_SECRET_KEY: SERVER_KEY,
      ...(database.url === undefined ? {} : { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '16' }),
      // The load generators are a few users and one key at rates no client reaches: budgets high enough
      // never to refuse them, but counted, so what the limiter costs is in every figure.
      ...BENCH_RATE_LIMITS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Parley is running at (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  return {
    child,
    url,
    stop: () =>
      new Promise((resolve) => {
        // Stopping a server that stopped already (a scenario that moved on to another) does nothing.
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A JSON request to the server. */
export async function call<T>(
  base: string,
  method: string,
  route: string,
  token: string,
  body?: unknown,
  actAs?: string,
): Promise<T> {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(actAs === undefined ? {} : { 'x-parley-user': actAs }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status >= 400)
    throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
