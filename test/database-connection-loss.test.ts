import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
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
});
