import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, rowsOf } from '../src/db/client.ts';
import { createTestDatabase, describeWithPostgres, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase | undefined;

beforeAll(async () => {
  if (process.env.DATABASE_URL !== undefined) database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describeWithPostgres('a PostgreSQL connection lost while checked out of the pool', () => {
  // Found by the fault suite (test/faults/): a server process died of an unhandled 'error' event when
  // PostgreSQL restarted while one of its transactions sat between two statements.
  it('fails the transaction using it, not the process, and the pool goes on with new connections', async () => {
    if (database === undefined) throw new Error('no database');
    const db = database.db;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const transaction = db.orm.transaction(async (tx) => {
        const [row] = rowsOf<{ pid: number }>(await tx.execute(sql`SELECT pg_backend_pid() AS pid`));
        // The connection is killed while the transaction waits between two statements, as in a restart.
        await admin.query('SELECT pg_terminate_backend($1)', [row?.pid]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await tx.execute(sql`SELECT 1`);
      });
      await expect(transaction).rejects.toThrow();
      const after = rowsOf<{ one: number }>(await db.orm.execute(sql`SELECT 1 AS one`));
      expect(after).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
    }
  });

  // Found reading drizzle's transaction(), after the fault suite: it releases its client only once BEGIN
  // has succeeded. An idle connection killed just before it is checked out fails BEGIN; the pool used to
  // keep counting it, and a pool of one then hung every later query.
  it('goes back to the pool even when it is lost before BEGIN', async () => {
    if (database?.url === undefined) throw new Error('no database');
    const single = await openDatabase({ databaseUrl: database.url, poolSize: 1 });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const [row] = rowsOf<{ pid: number }>(await single.orm.execute(sql`SELECT pg_backend_pid() AS pid`));
        await admin.query('SELECT pg_terminate_backend($1)', [row?.pid]);
        // Checked out at once, before the pool has noticed: BEGIN (or the statement after it) fails.
        await single.orm.transaction(async (tx) => tx.execute(sql`SELECT 1`)).catch(() => null);
        const next = await Promise.race([
          single.orm.execute(sql`SELECT 1 AS one`).then((result) => rowsOf<{ one: number }>(result)),
          new Promise((resolve) => setTimeout(() => resolve('the pool hung'), 3_000)),
        ]);
        expect(next).toEqual([{ one: 1 }]);
      }
    } finally {
      await admin.end();
      await single.close();
    }
  });
});
