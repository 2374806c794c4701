import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';

/** The PostgreSQL server of this run, when there is one (CI always sets it). */
export const SERVER_DATABASE_URL = process.env.DATABASE_URL;

/** A database owned by one test file; `drop()` closes it and deletes what it created. */
export interface TestDatabase {
  db: Database;
  /** Connection string of the file's own PostgreSQL database; undefined on the embedded one. */
  url: string | undefined;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database on the run's server and returns its URL and a drop function. */
export async function createServerDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (SERVER_DATABASE_URL === undefined) throw new Error('DATABASE_URL is not set');
  const name = `parley_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: SERVER_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(SERVER_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: SERVER_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * The database a test file runs on: a fresh PostgreSQL database when DATABASE_URL is set, otherwise an
 * in-memory embedded one. Migrated, like the server's.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (SERVER_DATABASE_URL === undefined) {
    const db = await openDatabase({});
    return { db, url: undefined, drop: () => db.close() };
  }
  const server = await createServerDatabase();
  const db = await openDatabase({ databaseUrl: server.url, poolSize: 8 });
  return {
    db,
    url: server.url,
    drop: async () => {
      await db.close();
      await server.drop();
    },
  };
}

/**
 * A describe block that needs a PostgreSQL server: it runs when DATABASE_URL is set (always in CI) and is
 * skipped with a printed reason otherwise (a fresh laptop).
 */
export function describeWithPostgres(name: string, body: () => void): void {
  if (SERVER_DATABASE_URL === undefined) {
    console.log(`skipped "${name}": it needs a PostgreSQL server; set DATABASE_URL to run it`);
  }
  describe.skipIf(SERVER_DATABASE_URL === undefined)(name, body);
}
