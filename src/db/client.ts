import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ResilientPool } from './pool.ts';
import { applySqlSources, type SqlSession, type SqlSourcesOutcome } from './sql-sources.ts';

/** Where drizzle-kit writes migrations and the migrators read them. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/** Name of the non-owner, non-bypass role every application query runs as (see migration 0000). */
export const APP_ROLE = 'parley_app';

/** Rows of a raw `execute()`: both drivers return `{ rows }`, which the shared type does not carry. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/** Connections a process keeps for reading the event log (its feeds read one tenant at a time each). */
const DELIVERY_POOL_SIZE = 2;

/** Both drivers' Drizzle instances share this type, so repositories are written once. */
export type Orm = PgDatabase<PgQueryResultHKT>;
/** A transaction handle of either driver. */
export type Tx = Parameters<Parameters<Orm['transaction']>[0]>[0];

/** An open database: the embedded PGlite or a PostgreSQL pool, with the schema migrated. */
export interface Database {
  readonly kind: 'embedded' | 'postgres';
  /** Runs as APP_ROLE: row-level security applies to every query made through it. */
  readonly orm: Orm;
  /**
   * Also APP_ROLE, on connections of its own: for reading the event log to deliver it, so that a backlog of
   * requests waiting for the main pool never holds delivery up (under a burst of sends, a feed's read queued
   * behind hundreds of them). The embedded database has one connection: there it is `orm`.
   */
  readonly deliveryOrm: Orm;
  /**
   * How many batches of sends run at once (see `SendBatcher`): the sends that arrive meanwhile wait and go
   * together. The embedded database runs one statement at a time, so one; PostgreSQL, a quarter of the pool,
   * which keeps connections for everything else a request does and makes batches form under load.
   */
  readonly sendBatchesInFlight: number;
  /** Throws unless a trivial query round-trips. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; absent means embedded. */
  databaseUrl?: string | undefined;
  /** Embedded only: directory of the database files; absent means in memory (tests). */
  dataDir?: string | undefined;
  /**
   * Embedded, in memory only: a dump of a data directory (PGlite's `dumpDataDir`) to start from instead of
   * an empty cluster. The test suite migrates one database once and starts every file's from its dump,
   * skipping PGlite's initdb and the migrations (test/global-setup.ts); pending migrations still apply.
   */
  embeddedTemplate?: Blob | undefined;
  /** PostgreSQL pool size. */
  poolSize?: number;
  /** Called with errors of idle pooled connections, which would otherwise crash the process. */
  onPoolError?: (error: Error) => void;
}

/** Opens the configured database and applies pending migrations before returning it. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.databaseUrl === undefined
    ? openEmbedded(options.dataDir, options.embeddedTemplate)
    : openPostgres(options.databaseUrl, options.poolSize ?? 10, options.onPoolError);
}

async function openEmbedded(dataDir: string | undefined, template: Blob | undefined): Promise<Database> {
  if (template !== undefined && dataDir !== undefined) {
    throw new Error('a template is for an in-memory embedded database only');
  }
  // The extensions message search needs (migration 0004) are compiled into PGlite's contrib, loaded here.
  const client = new PGlite({
    dataDir,
    ...(template === undefined ? {} : { loadDataDir: template }),
    extensions: { pg_trgm, btree_gin },
  });
  await client.waitReady;
  try {
    // PGlite has a single session: migrate as its owner, then drop to the app role for good.
    await migrateEmbedded(client);
    await client.exec(`SET ROLE ${APP_ROLE}`);
  } catch (error) {
    await client.close();
    throw error;
  }
  const orm: Orm = drizzlePglite({ client });
  return {
    kind: 'embedded',
    orm,
    deliveryOrm: orm,
    sendBatchesInFlight: 1,
    ping: async () => {
      await client.query('SELECT 1');
    },
    close: () => client.close(),
  };
}

async function openPostgres(
  databaseUrl: string,
  poolSize: number,
  onPoolError: ((error: Error) => void) | undefined,
): Promise<Database> {
  await migratePostgres(databaseUrl);
  // The role is a startup option, not a SET after connect: a connection that cannot take the role fails
  // instead of silently running as the owner.
  const connect = { connectionString: databaseUrl, options: `-c role=${APP_ROLE}` };
  const onError = (error: Error) => onPoolError?.(error);
  const pool = new ResilientPool({ ...connect, max: poolSize }, onError);
  const deliveryPool = new ResilientPool({ ...connect, max: DELIVERY_POOL_SIZE }, onError);
  return {
    kind: 'postgres',
    orm: drizzleNodePg({ client: pool }),
    deliveryOrm: drizzleNodePg({ client: deliveryPool }),
    sendBatchesInFlight: Math.max(1, Math.floor(poolSize / 4)),
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: async () => {
      await Promise.all([pool.end(), deliveryPool.end()]);
    },
  };
}

async function migratePostgres(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await migratePostgresClient(client);
  } finally {
    await client.end();
  }
}

/**
 * Migrates a PostgreSQL database as the client's role (which will own what it creates): Drizzle's
 * migrations and the function sources, in one transaction (src/db/sql-sources.ts). Under an advisory lock,
 * held until the client disconnects, so several processes starting together apply each migration once, and
 * the sources once (the others find them applied).
 */
export async function migratePostgresClient(client: pg.Client): Promise<SqlSourcesOutcome> {
  await client.query("SELECT pg_advisory_lock(hashtext('parley.migrate'))");
  return applySqlSources(postgresSession(client), { migrationsFolder: MIGRATIONS_FOLDER });
}

/** Migrates an embedded database on its single session, as its owner: the same transaction. */
export async function migrateEmbedded(client: PGlite): Promise<SqlSourcesOutcome> {
  return applySqlSources(pgliteSession(client), { migrationsFolder: MIGRATIONS_FOLDER });
}

/** An embedded database's session, for the function sources. */
export const pgliteSession = (client: PGlite): SqlSession => ({
  query: (text, params) => client.query(text, params),
  exec: (text) => client.exec(text),
});

/** A PostgreSQL connection, for the function sources. */
export const postgresSession = (client: pg.Client): SqlSession => ({
  query: (text, params) => client.query(text, params),
  exec: (text) => client.query(text),
});
