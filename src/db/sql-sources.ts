import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQL_SOURCES_VERSIONS } from './sql-sources-versions.ts';

/**
 * The database's functions, views and triggers, one source file each (docs/DATABASE.md): applied after
 * Drizzle's migrations every time they changed, as CREATE OR REPLACE, so that a change to a function is an
 * edit of its file and never a copy of its body into a new migration.
 */
export const FUNCTIONS_FOLDER = fileURLToPath(new URL('./functions', import.meta.url));

/** One file of `src/db/functions/`. */
export interface SqlSource {
  /** The file name without `.sql`: the function or view it defines (a trigger goes with its function). */
  name: string;
  text: string;
  /** The views the file creates: dropped before the files are applied, so that their columns may change. */
  views: string[];
}

/** A session of the role that owns the schema (the migrating one): node-postgres' Client or PGlite. */
export interface SqlSession {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  /** Runs a script of several statements (the simple query protocol), with no parameters. */
  exec(text: string): Promise<unknown>;
}

/**
 * The version of the sources this code carries: the last of SQL_SOURCES_VERSIONS, which test/sql-sources.test.ts
 * holds to the files (a changed file without a new version fails it).
 */
export const SQL_SOURCES_VERSION = SQL_SOURCES_VERSIONS.at(-1)?.version ?? 0;

/** Where the applied sources are recorded (migrations 0016, 0017): one row, beside Drizzle's own journal. */
const STATE_TABLE = 'drizzle.parley_sql_sources';

/** SQL text without its comments, where a name counts as used. */
const withoutComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--[^\n]*/g, ' ');

/** The source files, by name, as they are on disk. */
export function readSqlSources(folder: string = FUNCTIONS_FOLDER): SqlSource[] {
  return readdirSync(folder)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const text = readFileSync(path.join(folder, file), 'utf8');
      const views = [...text.matchAll(/CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)/gi)].map((m) => m[1] ?? '');
      return { name: file.slice(0, -'.sql'.length), text, views };
    });
}

/**
 * The sources in the order they are applied: a file that uses another's name (outside comments) comes
 * after it, and otherwise files go by name, so the order is the same on every machine. A cycle is an error.
 */
export function orderSqlSources(sources: readonly SqlSource[]): SqlSource[] {
  const byName = new Map(sources.map((source) => [source.name, source]));
  const needs = new Map<string, string[]>();
  for (const source of sources) {
    const code = withoutComments(source.text);
    const used = [...byName.keys()].filter(
      (other) => other !== source.name && new RegExp(`\\b${other}\\b`).test(code),
    );
    needs.set(source.name, used);
  }
  const ordered: SqlSource[] = [];
  const placed = new Set<string>();
  while (ordered.length < byName.size) {
    // The first file by name whose every dependency is placed.
    const next = [...byName.keys()].find(
      (name) => !placed.has(name) && (needs.get(name) ?? []).every((used) => placed.has(used)),
    );
    if (next === undefined) {
      const left = [...byName.keys()].filter((name) => !placed.has(name));
      throw new Error(`src/db/functions: these files use each other in a cycle: ${left.join(', ')}`);
    }
    placed.add(next);
    const source = byName.get(next);
    if (source) ordered.push(source);
  }
  return ordered;
}

/** The sources of `folder` (src/db/functions by default), in the order they are applied. */
export function loadSqlSources(folder: string = FUNCTIONS_FOLDER): SqlSource[] {
  return orderSqlSources(readSqlSources(folder));
}

/** A hash of the sources: their names and texts (the order they are applied in follows from those). */
export function hashSqlSources(sources: readonly SqlSource[]): string {
  const hash = createHash('sha256');
  for (const source of [...sources].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    hash.update(`${source.name}\0${source.text}\0`);
  }
  return hash.digest('hex');
}

/**
 * Applies the sources in one transaction: first drops the views they define (dependent views first), then
 * runs every file in order. Each file creates or replaces what it defines, and grants what it grants.
 */
export async function runSqlSources(session: SqlSession, sources: readonly SqlSource[]): Promise<void> {
  const views = sources.flatMap((source) => source.views).reverse();
  for (const view of views) await session.exec(`DROP VIEW IF EXISTS ${view}`);
  for (const source of sources) {
    try {
      await session.exec(source.text);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`src/db/functions/${source.name}.sql: ${message}`, { cause: error });
    }
  }
}

/** What `applySqlSources` did. */
export type SqlSourcesOutcome =
  | 'applied'
  /** Applied already, of the same version and with the same migrations since: nothing to do. */
  | 'unchanged'
  /**
   * The database has migrations this code does not know, or sources of a higher version: it belongs to a
   * newer version, and its sources are left as they are.
   */
  | 'newer-database';

/** How `applySqlSources` is called: the defaults are the server's. */
export interface ApplySqlSourcesOptions {
  /** Drizzle's migrations (journal and SQL): the pending ones are applied in the same transaction. */
  migrationsFolder: string;
  /** The sources (those of src/db/functions by default). */
  sources?: readonly SqlSource[];
  /** Their version (SQL_SOURCES_VERSION by default): a database's of a higher one is left alone. */
  version?: number;
  /** How long a statement waits for a lock before the attempt gives up (`lock_timeout`). */
  lockTimeoutMs?: number;
  /** Attempts, the first included, before the start fails for want of a lock. */
  lockAttempts?: number;
  /** The wait before the second attempt, doubled before each next one. */
  retryDelayMs?: number;
}

/**
 * Applies Drizzle's pending migrations and then the sources, in one transaction, so that both commit or
 * neither does (a migration that drops a function's old signature never commits without its new one).
 * Unless nothing is to do: the state row records the sources' version and hash and the newest migration at
 * the time, so a start with no pending migration and unchanged sources costs two queries and no
 * transaction. A migration applied since (which may have dropped or changed what a file defines) applies
 * them again; sources of a lower version than the database's are never applied.
 *
 * Every statement waits at most `lockTimeoutMs` for a lock (so sends queue behind a deploy that long at
 * most); an attempt that times out is rolled back and made again after a doubling delay, and after
 * `lockAttempts` the call fails, naming the cause. Call it on the migrating session, under the advisory
 * lock. It replaces Drizzle's migrator, and keeps its journal the same way (drizzle.__drizzle_migrations).
 */
export async function applySqlSources(
  session: SqlSession,
  options: ApplySqlSourcesOptions,
): Promise<SqlSourcesOutcome> {
  // Read and hashed on every start; put in order only when they are applied.
  const sources = options.sources ?? readSqlSources();
  const code: CodeVersion = {
    journal: readJournal(options.migrationsFolder),
    hash: hashSqlSources(sources),
    version: options.version ?? SQL_SOURCES_VERSION,
  };
  // As Drizzle's migrator does before anything, so that a fresh database has a journal to read.
  await session.exec(`CREATE SCHEMA IF NOT EXISTS drizzle;
    CREATE TABLE IF NOT EXISTS ${JOURNAL_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`);
  const plan = await planOf(session, code);
  if (plan.outcome !== 'apply') return plan.outcome;
  const lockTimeoutMs = Math.round(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  const attempts = options.lockAttempts ?? DEFAULT_LOCK_ATTEMPTS;
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyInTransaction(session, code, options.migrationsFolder, sources, lockTimeoutMs);
    } catch (error) {
      if (!isLockNotGranted(error)) throw error;
      if (attempt >= attempts) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(
          `Gave up migrating the database after ${attempts} attempts: each waited more than ${lockTimeoutMs} ms ` +
            `(lock_timeout) for a lock that another session held, most likely a long transaction on a table ` +
            `that the migrations or src/db/functions change (messages, conversation_members; see ` +
            `pg_stat_activity). Nothing was changed; start again once it has ended. Last error: ${message}`,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs * 2 ** (attempt - 1)));
    }
  }
}

/** How long applying waits for each lock, by default: long enough for a send, short for a deploy. */
const DEFAULT_LOCK_TIMEOUT_MS = 5000;
/** Attempts by default: with the delays, a start gives up after about half a minute. */
const DEFAULT_LOCK_ATTEMPTS = 4;
const DEFAULT_RETRY_DELAY_MS = 1000;

/** Drizzle's journal of applied migrations. */
const JOURNAL_TABLE = 'drizzle.__drizzle_migrations';

/** What this code brings: its migrations, and its sources' hash and version. */
interface CodeVersion {
  journal: JournalEntry[];
  hash: string;
  version: number;
}

/** One migration of drizzle-kit's journal (meta/_journal.json). */
interface JournalEntry {
  /** Its time, which Drizzle records as `created_at` and compares to know what is applied. */
  when: number;
  /** The file name without `.sql`. */
  tag: string;
}

/** What the database needs: migrations (in journal order), then sources, or nothing. */
type Plan =
  { outcome: 'newer-database' | 'unchanged' } | { outcome: 'apply'; pending: JournalEntry[]; state: string };

async function planOf(session: SqlSession, code: CodeVersion): Promise<Plan> {
  // The newest migration as Drizzle's migrator reads it (no aggregate: the first one is slow on PGlite).
  const { rows } = await session.query(
    `SELECT created_at::text AS migrated FROM ${JOURNAL_TABLE} ORDER BY created_at DESC LIMIT 1`,
  );
  const migrated = (rows as { migrated: string | null }[])[0]?.migrated ?? '';
  const newest = Math.max(0, ...code.journal.map((entry) => entry.when));
  if (Number(migrated) > newest) return { outcome: 'newer-database' };
  const pending = code.journal.filter((entry) => Number(migrated) < entry.when);
  // With migrations pending, the state is read again once they are applied (it may not exist before).
  if (pending.length > 0) return { outcome: 'apply', pending, state: '' };
  const applied = await session.query(`SELECT state, version FROM ${STATE_TABLE}`);
  const [row] = applied.rows as { state: string; version: number }[];
  if (row !== undefined && row.version > code.version) return { outcome: 'newer-database' };
  const state = `${code.hash} ${migrated}`;
  if (row?.state === state && row.version === code.version) return { outcome: 'unchanged' };
  return { outcome: 'apply', pending: [], state };
}

/** One attempt: the pending migrations, then the sources, in one transaction with a lock timeout. */
async function applyInTransaction(
  session: SqlSession,
  code: CodeVersion,
  migrationsFolder: string,
  sources: readonly SqlSource[],
  lockTimeoutMs: number,
): Promise<SqlSourcesOutcome> {
  await session.exec('BEGIN');
  try {
    await session.exec(`SET LOCAL lock_timeout = '${lockTimeoutMs}ms'`);
    let plan = await planOf(session, code);
    if (plan.outcome === 'apply' && plan.pending.length > 0) {
      for (const entry of plan.pending) await runMigration(session, migrationsFolder, entry);
      plan = await planOf(session, code);
    }
    if (plan.outcome !== 'apply') {
      await session.exec('COMMIT');
      return plan.outcome;
    }
    await runSqlSources(session, orderSqlSources(sources));
    await session.query(
      `INSERT INTO ${STATE_TABLE} (state, version) VALUES ($1, $2)
       ON CONFLICT (singleton) DO UPDATE SET state = excluded.state, version = excluded.version, applied_at = now()`,
      [plan.state, code.version],
    );
    await session.exec('COMMIT');
  } catch (error) {
    await session.exec('ROLLBACK');
    throw error;
  }
  return 'applied';
}

/** Runs one migration's statements and records it, as Drizzle's migrator does (same hash, same time). */
async function runMigration(
  session: SqlSession,
  migrationsFolder: string,
  entry: JournalEntry,
): Promise<void> {
  const text = readFileSync(path.join(migrationsFolder, `${entry.tag}.sql`), 'utf8');
  for (const statement of text.split('--> statement-breakpoint')) {
    if (statement.trim() === '') continue;
    try {
      await session.exec(statement);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`migration ${entry.tag}: ${message}`, { cause: error });
    }
  }
  await session.query(`INSERT INTO ${JOURNAL_TABLE} (hash, created_at) VALUES ($1, $2)`, [
    createHash('sha256').update(text).digest('hex'),
    entry.when,
  ]);
}

/** A lock not granted within lock_timeout (55P03), or a deadlock this session lost (40P01). */
function isLockNotGranted(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === '55P03' || code === '40P01') return true;
  }
  return false;
}

/** drizzle-kit's journal of `migrationsFolder`. */
function readJournal(migrationsFolder: string): JournalEntry[] {
  const journal = JSON.parse(readFileSync(path.join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: JournalEntry[];
  };
  return journal.entries;
}
