import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What the suite runs its own PostgreSQL and Redis with. */
export interface Binaries {
  /** The directory of initdb, pg_ctl and postgres (the newest /usr/lib/postgresql/N/bin). */
  postgresBin: string;
  redisServer: string;
  /** PostgreSQL refuses to run as root: as root, every PostgreSQL command runs as this user through runuser. */
  runAs: { uid: number; gid: number; name: string } | null;
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const full = path.join(dir, name);
    if (dir !== '' && existsSync(full)) return full;
  }
  return null;
}

/** Finds the binaries, or says why the suite cannot run here. */
export function findBinaries(): Binaries | { missing: string } {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((version) => existsSync(path.join(root, version, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) return { missing: `no PostgreSQL server binaries (initdb) under ${root}` };
  const redisServer = onPath('redis-server');
  if (redisServer === null) return { missing: 'redis-server is not on the PATH' };
  let runAs: Binaries['runAs'] = null;
  if (process.getuid?.() === 0) {
    if (onPath('runuser') === null) return { missing: 'running as root without runuser' };
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return { missing: 'running as root and no postgres user' };
    runAs = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), name: 'postgres' };
  }
  return { postgresBin: path.join(root, newest, 'bin'), redisServer, runAs };
}

/** A free TCP port on loopback (free when asked; the suite then keeps it for its service). */
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

/**
 * A PostgreSQL cluster of the suite's own: initdb into a temporary directory, listening on 127.0.0.1 and a
 * port of its own, its socket in that directory. `fsync=off`: the faults kill processes, never the machine,
 * so what PostgreSQL has written stays in the page cache, and the run spends its time on Parley.
 */
export class PostgresCluster {
  private constructor(
    private readonly binaries: Binaries,
    readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  private command(name: string, args: string[]): [string, string[]] {
    const full = path.join(this.binaries.postgresBin, name);
    return this.binaries.runAs
      ? ['runuser', ['-u', this.binaries.runAs.name, '--', full, ...args]]
      : [full, args];
  }

  private async exec(name: string, args: string[], timeoutMs = 60_000): Promise<void> {
    const [file, argv] = this.command(name, args);
    await run(file, argv, { timeout: timeoutMs });
  }

  /** Creates the cluster in `dir` (a fresh directory of the run's) and starts it. */
  static async create(binaries: Binaries, dir: string): Promise<PostgresCluster> {
    if (binaries.runAs) chownSync(dir, binaries.runAs.uid, binaries.runAs.gid);
    const cluster = new PostgresCluster(binaries, dir, await freePort());
    await cluster.exec('initdb', [
      '-D',
      cluster.dataDir,
      '--auth=trust',
      '--username=postgres',
      '--no-sync',
      '--no-instructions',
      '--encoding=UTF8',
    ]);
    await cluster.start();
    return cluster;
  }

  async start(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c max_connections=200',
    ].join(' ');
    await this.exec('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      path.join(this.dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      '-o',
      options,
      'start',
    ]);
  }

  /** `fast` rolls back open transactions and closes connections; `immediate` is a crash (recovery on start). */
  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** Stops the cluster at once, synchronously (for cleanup on exit); never throws. */
  stopNow(): void {
    if (!existsSync(path.join(this.dataDir, 'postmaster.pid'))) return;
    const [file, argv] = this.command('pg_ctl', [
      '-D',
      this.dataDir,
      '-m',
      'immediate',
      '-w',
      '-t',
      '30',
      'stop',
    ]);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 40_000 });
  }
}

/** A Redis of the suite's own on a port of its own: no persistence, so a restart starts empty. */
export class RedisServer {
  private child: ChildProcess | null = null;

  constructor(
    private readonly binary: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      this.binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis did not start:\n${output}`)), 15_000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis exited with ${code}:\n${output}`));
      });
    });
  }

  /** kill -9, and waits until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  killNow(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}
