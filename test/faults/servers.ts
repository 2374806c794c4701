import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { cleanEnv, ROOT } from '../helpers/processes.ts';
import { sleep } from './random.ts';

/** Output kept per server process (the tail), for a failure report. */
const OUTPUT_KEPT = 64 * 1024;

interface Running {
  child: ChildProcessWithoutNullStreams;
  exited: Promise<void>;
}

/** One of the run's server processes: a fixed port, so that a killed one comes back where clients look. */
export class ServerSlot {
  private running: Running | null = null;
  private output = '';
  /** How many processes this slot has started. */
  starts = 0;
  /** Processes that exited without being killed by the run (a crash is a finding). */
  readonly unexpectedExits: string[] = [];

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly dataDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the server as `npm start` does; retries (the database may be restarting) until `deadline`. */
  async start(deadline: number): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    for (;;) {
      try {
        await this.startOnce(Math.max(5_000, deadline - Date.now()));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(300);
      }
    }
  }

  private startOnce(timeoutMs: number): Promise<void> {
    this.starts++;
    const child = spawn(process.execPath, ['bin/start.mjs'], {
      cwd: ROOT,
      env: cleanEnv({
        ...this.env,
        LOG_LEVEL: 'warn',
        PORT: String(this.port),
        PARLEY_DATA_DIR: this.dataDir,
      }),
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let banner = '';
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-OUTPUT_KEPT);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.output += `\n--- server ${this.index}, start ${this.starts}\n`;
    return new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`server ${this.index} did not start: ${why}`));
      };
      const timer = setTimeout(() => fail(`no banner within ${timeoutMs} ms`), timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => {
        if (this.running?.child === child) return;
        banner += chunk.toString();
        if (banner.includes('Parley is running at')) {
          clearTimeout(timer);
          this.running = { child, exited };
          resolve();
        }
      });
      void exited.then(() => {
        if (this.running?.child === child) {
          this.running = null;
          this.unexpectedExits.push(`server ${this.index} exited with ${child.exitCode ?? child.signalCode}`);
        } else fail(`exited with ${child.exitCode}`);
      });
    });
  }

  /** kill -9, and waits until the process is gone. */
  async kill(): Promise<void> {
    const running = this.running;
    this.running = null;
    if (running === null) return;
    running.child.kill('SIGKILL');
    await running.exited;
  }

  /** Kills the process at once (cleanup); never throws. */
  killNow(): void {
    this.running?.child.kill('SIGKILL');
    this.running = null;
  }

  /** The tail of what this slot's processes printed, for a failure report. */
  outputTail(chars = 3000): string {
    return this.output.slice(-chars);
  }
}

/** The run's server processes, all on one PostgreSQL and one Redis, with shared credentials. */
export function serverSlots(ports: number[], env: Record<string, string>, runDir: string): ServerSlot[] {
  return ports.map((port, index) => new ServerSlot(index, port, env, path.join(runDir, `server-${index}`)));
}
