import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where `npm start` runs. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory for a server's or CLI's data, removed when the test process exits. */
export function tempDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-test-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * This process's environment without anything that would point a child at another database, or make it
 * trust certificate authorities the test did not give it (NODE_EXTRA_CA_CERTS).
 */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      !/^(DATABASE_URL|DATABASE_POOL_SIZE|REDIS_URL|PORT|HOST|LOG_LEVEL|NODE_EXTRA_CA_CERTS|PARLEY_.*)$/.test(
        name,
      )
    )
      env[name] = value;
  }
  return { ...env, ...extra };
}

/** A server process started as `npm start` starts it, with its output collected. */
export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts the server as `npm start` does (bin/start.mjs: the bundled dist/main.mjs when current, as after `npm ci`,
 * else the sources through tsx) on an ephemeral port, and waits for its welcome line.
 */
export async function startServer(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['bin/start.mjs'], {
    cwd: ROOT,
    env: cleanEnv({ PORT: '0', LOG_LEVEL: 'warn', ...env }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start:\n${stdout}\n${stderr}`)),
      timeoutMs,
    );
    const check = () => {
      const match = /Parley is running at (http:\/\/\S+)/.exec(stdout);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs the `parley` CLI to completion. */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/parley.js', ...args], {
      cwd: ROOT,
      env: cleanEnv({ LOG_LEVEL: 'warn', ...env }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
