import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { describe, inject } from 'vitest';
import { openDatabase, rowsOf, type Database } from '../../src/db/client.ts';
import { assertEventsOnContract, EVENT_ROWS_QUERY, type LoggedRow } from './event-contract.ts';

/** The PostgreSQL server of this run, when there is one (CI always sets it). */
export const SERVER_DATABASE_URL = process.env.DATABASE_URL;

/**
 * A database owned by one test file; `drop()` closes it and deletes what it created, after checking every
 * event the file wrote against the event contract (it throws, listing them, if any breaks it).
 */
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
      try {
        await checkEventsOf(url.toString());
      } finally {
        const client = new pg.Client({ connectionString: SERVER_DATABASE_URL });
        await client.connect();
        try {
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } finally {
          await client.end();
        }
      }
    },
  };
}

/** Checks every event of a server database (as its owner, so row-level security hides none). */
async function checkEventsOf(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ table: string | null }>(
      "SELECT to_regclass('events')::text AS table",
    );
    if (rows[0]?.table === null || rows[0] === undefined) return;
    assertEventsOnContract((await client.query<LoggedRow>(EVENT_ROWS_QUERY)).rows, url);
  } finally {
    await client.end();
  }
}

/**
 * The database a test file runs on: a fresh PostgreSQL database when DATABASE_URL is set, otherwise an
 * in-memory embedded one. Migrated, like the server's.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (SERVER_DATABASE_URL === undefined) {
    // From the run's migrated template (test/global-setup.ts) when there is one.
    const template = inject('embeddedTemplate');
    const db = await openDatabase(
      template === undefined ? {} : { embeddedTemplate: new Blob([readFileSync(template)]) },
    );
    return {
      db,
      url: undefined,
      drop: async () => {
        try {
          // The embedded database's one session runs as the app role; its owner reads every tenant's events.
          await db.orm.execute(sql`RESET ROLE`);
          const rows = rowsOf<LoggedRow>(await db.orm.execute(sql.raw(EVENT_ROWS_QUERY)));
          assertEventsOnContract(rows, 'the embedded test database');
        } finally {
          await db.close();
        }
      },
    };
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
