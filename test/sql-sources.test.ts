import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MIGRATIONS_FOLDER,
  migrateEmbedded,
  migratePostgresClient,
  pgliteSession,
  postgresSession,
} from '../src/db/client.ts';
import {
  applySqlSources,
  hashSqlSources,
  loadSqlSources,
  readSqlSources,
  runSqlSources,
  SQL_SOURCES_VERSION,
  type SqlSession,
  type SqlSource,
  type SqlSourcesOutcome,
} from '../src/db/sql-sources.ts';
import { SQL_SOURCES_VERSIONS } from '../src/db/sql-sources-versions.ts';
import { createServerDatabase, describeWithPostgres, SERVER_DATABASE_URL } from './helpers/database.ts';

/**
 * The first migration after functions, views and triggers moved to src/db/functions: from it on, a
 * migration may drop one (a function whose arguments change, one no source defines any more), never
 * create or change one.
 */
const FIRST_MIGRATION_WITHOUT_DEFINITIONS = 16;

/** An empty database of this run's kind, a session of its owner (the migrating role) and its migration. */
interface OwnedDatabase {
  session: SqlSession;
  /** Migrates as openDatabase does: Drizzle's migrations, then the sources. */
  migrate(): Promise<SqlSourcesOutcome>;
  close(): Promise<void>;
}

async function ownedDatabase(): Promise<OwnedDatabase> {
  if (SERVER_DATABASE_URL === undefined) {
    const client = new PGlite({ extensions: { pg_trgm, btree_gin } });
    await client.waitReady;
    return {
      session: pgliteSession(client),
      migrate: () => migrateEmbedded(client),
      close: () => client.close(),
    };
  }
  const server = await createServerDatabase();
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  return {
    session: postgresSession(client),
    migrate: () => migratePostgresClient(client),
    close: async () => {
      await client.end();
      await server.drop();
    },
  };
}

/** Not part of an extension (pg_trgm and btree_gin bring functions of their own). */
const notFromExtension = (catalog: string) => `NOT EXISTS (
  SELECT 1 FROM pg_depend d
  WHERE d.classid = '${catalog}'::regclass AND d.objid = x.oid AND d.deptype = 'e')`;

/**
 * Every function, view and trigger of the public schema, by key, as the server prints it back (so that two
 * definitions are compared the way PostgreSQL understands them, not as text): with owner, grants and
 * options, which a source defines too.
 */
async function definitionsIn(session: SqlSession): Promise<Map<string, string>> {
  const { rows } = await session.query(`
    SELECT 'function ' || x.oid::regprocedure::text AS key,
           concat_ws(E'\\n', pg_get_functiondef(x.oid), 'owner ' || pg_get_userbyid(x.proowner),
                     'grants ' || coalesce(x.proacl::text, 'default'),
                     'comment ' || obj_description(x.oid, 'pg_proc')) AS definition
    FROM pg_proc x
    WHERE x.pronamespace = 'public'::regnamespace AND ${notFromExtension('pg_proc')}
    UNION ALL
    SELECT 'view ' || x.relname,
           concat_ws(E'\\n', pg_get_viewdef(x.oid, true), 'kind ' || x.relkind::text,
                     'options ' || coalesce(x.reloptions::text, 'none'),
                     'owner ' || pg_get_userbyid(x.relowner), 'grants ' || coalesce(x.relacl::text, 'default'),
                     'comment ' || obj_description(x.oid, 'pg_class'))
    FROM pg_class x
    WHERE x.relkind IN ('v', 'm') AND x.relnamespace = 'public'::regnamespace AND ${notFromExtension('pg_class')}
    UNION ALL
    SELECT 'trigger ' || t.tgname || ' on ' || c.relname,
           concat_ws(E'\\n', pg_get_triggerdef(t.oid, true), 'enabled ' || t.tgenabled::text,
                     'comment ' || obj_description(t.oid, 'pg_trigger'))
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace`);
  return new Map((rows as { key: string; definition: string }[]).map((row) => [row.key, row.definition]));
}

/** Drops every function, view and trigger of the public schema (in a transaction that is rolled back). */
const DROP_ALL_DEFINITIONS = `DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace LOOP
    EXECUTE format('DROP TRIGGER %I ON %I', r.tgname, r.relname);
  END LOOP;
  FOR r IN SELECT x.relname, x.relkind FROM pg_class x
           WHERE x.relkind IN ('v', 'm') AND x.relnamespace = 'public'::regnamespace
             AND ${notFromExtension('pg_class')} LOOP
    EXECUTE format('DROP %s IF EXISTS %I CASCADE',
                   CASE r.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, r.relname);
  END LOOP;
  FOR r IN SELECT x.oid::regprocedure::text AS signature FROM pg_proc x
           WHERE x.pronamespace = 'public'::regnamespace AND ${notFromExtension('pg_proc')} LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.signature);
  END LOOP;
END
$$`;

/** What the sources define, on this database: everything dropped, the sources run, read, rolled back. */
async function definitionsOfSources(
  session: SqlSession,
  sources: readonly SqlSource[],
): Promise<Map<string, string>> {
  await session.exec('BEGIN');
  try {
    await session.exec(DROP_ALL_DEFINITIONS);
    await runSqlSources(session, sources);
    return await definitionsIn(session);
  } finally {
    await session.exec('ROLLBACK');
  }
}

/** The sources with one function's body changed, as a newer version's would be. */
const editedSources = (sources: readonly SqlSource[]): SqlSource[] =>
  sources.map((source) =>
    source.name === 'parley_purge_events'
      ? {
          ...source,
          text: source.text.replace('SELECT count(*) FROM purged', 'SELECT count(*) + 0 FROM purged'),
        }
      : source,
  );

/** The body of parley_purge_events as the database holds it (edited or not, above). */
async function purgeEventsBody(session: SqlSession): Promise<string | undefined> {
  const { rows } = await session.query(
    `SELECT prosrc AS body FROM pg_proc WHERE proname = 'parley_purge_events'`,
  );
  return (rows as { body: string }[])[0]?.body;
}

/** The `created_at` of the newest migration the database records, as Drizzle's migrator reads it. */
async function newestMigrationIn(session: SqlSession): Promise<number> {
  const { rows } = await session.query(
    'SELECT created_at::text AS migrated FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1',
  );
  return Number((rows as { migrated: string }[])[0]?.migrated ?? 0);
}

describe('the version of the function sources (SQL_SOURCES_VERSIONS)', () => {
  it('is recorded for the files as they are: a changed file needs a new version', () => {
    expect(
      SQL_SOURCES_VERSIONS.map((entry) => entry.version),
      'src/db/sql-sources-versions.ts: the versions are 1, 2, 3, … in order',
    ).toEqual(SQL_SOURCES_VERSIONS.map((_, index) => index + 1));
    const last = SQL_SOURCES_VERSIONS.at(-1);
    const hash = hashSqlSources(readSqlSources());
    expect(
      last?.sha256,
      `src/db/functions changed since version ${last?.version ?? 0}: append ` +
        `{ version: ${(last?.version ?? 0) + 1}, sha256: '${hash}' } to SQL_SOURCES_VERSIONS in ` +
        'src/db/sql-sources-versions.ts (never edit an entry)',
    ).toBe(hash);
    expect(SQL_SOURCES_VERSION).toBe(last?.version);
  });
});

describe('the database functions, views and triggers (src/db/functions)', () => {
  let db: OwnedDatabase;
  const sources = loadSqlSources();

  beforeAll(async () => {
    db = await ownedDatabase();
    expect(await db.migrate()).toBe('applied');
  });
  afterAll(() => db.close());

  it('are, in a migrated database, exactly what the source files define: nothing differs, is missing or extra', async () => {
    const live = await definitionsIn(db.session);
    const defined = await definitionsOfSources(db.session, sources);
    const withoutSource = [...live.keys()].filter((key) => !defined.has(key));
    expect(withoutSource, 'in the database, but no file of src/db/functions defines it').toEqual([]);
    const notApplied = [...defined.keys()].filter((key) => !live.has(key));
    expect(notApplied, 'defined by a source file, but not in the database').toEqual([]);
    for (const [key, definition] of defined) {
      expect(live.get(key), `${key}: the database's definition is not its source's`).toBe(definition);
    }
    expect(defined.size).toBeGreaterThan(10);
  });

  it('has one file per function or view, named after it (a trigger goes in the file of its function)', async () => {
    const defined = [...(await definitionsOfSources(db.session, sources)).keys()];
    for (const source of sources) {
      expect(
        defined.some((key) => key.startsWith(`function ${source.name}(`) || key === `view ${source.name}`),
        `${source.name}.sql defines no function or view named ${source.name}`,
      ).toBe(true);
    }
    for (const key of defined.filter((name) => !name.startsWith('trigger '))) {
      const name = key.replace(/^(function|view) /, '').replace(/\(.*$/, '');
      expect(
        sources.map((source) => source.name),
        `${key} is not in a file of its own name`,
      ).toContain(name);
    }
  });

  it('gives message_rows every column of messages but the search vector, as the readers expect', async () => {
    // The view lists its columns (SQL has no "all but"); a column added to messages must be added to it.
    const columnsOf = async (relation: string) => {
      const { rows } = await db.session.query(
        `SELECT attname AS name FROM pg_attribute
         WHERE attrelid = '${relation}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      );
      return (rows as { name: string }[]).map((row) => row.name);
    };
    const table = (await columnsOf('messages')).filter((name) => name !== 'search_vector');
    expect(await columnsOf('message_rows')).toEqual(table);
  });

  it('keeps migrations from defining them again: a later migration only drops', async () => {
    const fresh = await ownedDatabase();
    try {
      await fresh.session.exec('CREATE SCHEMA IF NOT EXISTS drizzle');
      let before = new Map<string, string>();
      for (const [index, migration] of readMigrationFiles({
        migrationsFolder: MIGRATIONS_FOLDER,
      }).entries()) {
        for (const statement of migration.sql) {
          if (statement.trim() !== '') await fresh.session.exec(statement);
        }
        if (index < FIRST_MIGRATION_WITHOUT_DEFINITIONS - 1) continue;
        const after = await definitionsIn(fresh.session);
        if (index >= FIRST_MIGRATION_WITHOUT_DEFINITIONS) {
          const made = [...after].filter(([key, definition]) => before.get(key) !== definition);
          expect(
            made.map(([key]) => key),
            `migration ${index} creates or changes a function, view or trigger: edit its file in src/db/functions instead`,
          ).toEqual([]);
        }
        before = after;
      }
    } finally {
      await fresh.close();
    }
  });

  it('applies the sources again when one changes, and not otherwise', async () => {
    const { session } = db;
    const options = { migrationsFolder: MIGRATIONS_FOLDER };
    expect(await applySqlSources(session, { ...options, sources })).toBe('unchanged');
    const edited = sources.map((source) =>
      source.name === 'parley_purge_events'
        ? {
            ...source,
            text: source.text.replace('SELECT count(*) FROM purged', 'SELECT count(*) + 0 FROM purged'),
          }
        : source,
    );
    expect(await applySqlSources(session, { ...options, sources: edited })).toBe('applied');
    const bodyOf = async () => {
      const { rows } = await session.query(
        `SELECT prosrc AS body FROM pg_proc WHERE proname = 'parley_purge_events'`,
      );
      return (rows as { body: string }[])[0]?.body;
    };
    expect(await bodyOf()).toContain('count(*) + 0');
    expect(await applySqlSources(session, { ...options, sources: edited })).toBe('unchanged');
    expect(await applySqlSources(session, { ...options, sources })).toBe('applied');
    expect(await bodyOf()).not.toContain('count(*) + 0');
  });

  it('commits the migrations and the sources together: a failing source commits no migration', async () => {
    const fresh = await ownedDatabase();
    try {
      const { session } = fresh;
      // A database of the version before the sources: migrated up to 0015, as Drizzle recorded it.
      await session.exec(`CREATE SCHEMA drizzle;
        CREATE TABLE drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`);
      const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
      for (const migration of migrations.slice(0, FIRST_MIGRATION_WITHOUT_DEFINITIONS)) {
        for (const statement of migration.sql) {
          if (statement.trim() !== '') await session.exec(statement);
        }
        await session.query('INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ($1, $2)', [
          migration.hash,
          migration.folderMillis,
        ]);
      }
      const before = migrations[FIRST_MIGRATION_WITHOUT_DEFINITIONS - 1]?.folderMillis;
      // The signature 0016 drops, for the sources to create the new one.
      const oldTimelinePage = `to_regprocedure('parley_timeline_page(uuid, text, uuid, uuid, bigint, integer, bigint, integer)')`;
      const hasOldTimelinePage = async () => {
        const { rows } = await session.query(`SELECT ${oldTimelinePage} IS NOT NULL AS present`);
        return (rows as { present: boolean }[])[0]?.present;
      };
      expect(await hasOldTimelinePage()).toBe(true);

      // A start whose sources fail (a source with an error, last in the order).
      const folder = mkdtempSync(path.join(tmpdir(), 'parley-sources-'));
      try {
        for (const source of sources) writeFileSync(path.join(folder, `${source.name}.sql`), source.text);
        writeFileSync(path.join(folder, 'zz_broken.sql'), 'CREATE FUNCTION zz_broken() RETURNS int AS;');
        await expect(
          applySqlSources(session, { migrationsFolder: MIGRATIONS_FOLDER, sources: readSqlSources(folder) }),
        ).rejects.toThrow(/src\/db\/functions\/zz_broken\.sql/);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
      // Neither did the migrations commit: the journal, the old signature and the state table are as before.
      expect(await newestMigrationIn(session)).toBe(before);
      expect(await hasOldTimelinePage()).toBe(true);
      const state = await session.query(`SELECT to_regclass('drizzle.parley_sql_sources') IS NULL AS absent`);
      expect(state.rows).toEqual([{ absent: true }]);

      // The next start, with good sources, applies both.
      expect(await applySqlSources(session, { migrationsFolder: MIGRATIONS_FOLDER, sources })).toBe(
        'applied',
      );
      expect(await newestMigrationIn(session)).toBe(migrations.at(-1)?.folderMillis);
      expect(await hasOldTimelinePage()).toBe(false);
      expect(await definitionsIn(session)).toEqual(await definitionsOfSources(session, sources));
    } finally {
      await fresh.close();
    }
  });

  it('never applies sources of a lower version than the applied ones, though no migration tells them apart', async () => {
    const { session } = db;
    const options = { migrationsFolder: MIGRATIONS_FOLDER };
    try {
      // A newer version, whose only change is a source.
      const newer = { ...options, sources: editedSources(sources), version: SQL_SOURCES_VERSION + 1 };
      expect(await applySqlSources(session, newer)).toBe('applied');
      // A process of this version starting after it leaves the newer sources as they are.
      expect(await applySqlSources(session, { ...options, sources })).toBe('newer-database');
      expect(await purgeEventsBody(session)).toContain('count(*) + 0');
      expect(await applySqlSources(session, newer)).toBe('unchanged');
    } finally {
      // As an operator puts the sources back (docs/DATABASE.md): forget the row, apply.
      await session.exec('DELETE FROM drizzle.parley_sql_sources');
      expect(await applySqlSources(session, { ...options, sources })).toBe('applied');
    }
    expect(await purgeEventsBody(session)).not.toContain('count(*) + 0');
  });

  it('applies them again after a migration, and leaves a database of a newer version alone', async () => {
    const { session } = db;
    // A newer version's journal: one more migration, which drops a view (as one whose columns change would).
    const journal = JSON.parse(
      readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'),
    ) as {
      entries: { when: number }[];
    };
    const newest = Math.max(...journal.entries.map((entry) => entry.when));
    const newer = mkdtempSync(path.join(tmpdir(), 'parley-journal-'));
    try {
      mkdirSync(path.join(newer, 'meta'));
      writeFileSync(
        path.join(newer, 'meta', '_journal.json'),
        JSON.stringify({ entries: [...journal.entries, { when: newest + 1 }] }),
      );
      await session.exec(`DROP VIEW message_rows;
        INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('test', ${newest + 1})`);
      // This version does not know that migration: the database is a newer version's, left as it is.
      expect(await applySqlSources(session, { migrationsFolder: MIGRATIONS_FOLDER, sources })).toBe(
        'newer-database',
      );
      // The newer version applies its sources after its migration, though they did not change.
      expect(await applySqlSources(session, { migrationsFolder: newer, sources })).toBe('applied');
      const views = await session.query(`SELECT 1 FROM pg_views WHERE viewname = 'message_rows'`);
      expect(views.rows).toHaveLength(1);
    } finally {
      rmSync(newer, { recursive: true, force: true });
      await session.exec(`DELETE FROM drizzle.__drizzle_migrations WHERE hash = 'test'`);
    }
  });
});

describeWithPostgres('the function sources on PostgreSQL', () => {
  it('are applied once when several processes migrate at once', async () => {
    const server = await createServerDatabase();
    // Each process migrates on a connection of its own, whose advisory lock lasts until it disconnects.
    const migrateAsProcess = async () => {
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      try {
        return await migratePostgresClient(client);
      } finally {
        await client.end();
      }
    };
    try {
      const outcomes = await Promise.all([migrateAsProcess(), migrateAsProcess(), migrateAsProcess()]);
      expect(outcomes.sort()).toEqual(['applied', 'unchanged', 'unchanged']);
    } finally {
      await server.drop();
    }
  });

  it('waits for a lock at most lock_timeout, a few times, and applies once the lock is free', async () => {
    const server = await createServerDatabase();
    const migrating = new pg.Client({ connectionString: server.url });
    // A send in flight that does not end: a transaction holding ROW EXCLUSIVE on messages, which conflicts
    // with replacing the trigger on messages.
    const sender = new pg.Client({ connectionString: server.url });
    await Promise.all([migrating.connect(), sender.connect()]);
    try {
      expect(await migratePostgresClient(migrating)).toBe('applied');
      const session = postgresSession(migrating);
      const options = {
        migrationsFolder: MIGRATIONS_FOLDER,
        sources: editedSources(loadSqlSources()),
        lockTimeoutMs: 200,
        lockAttempts: 3,
        retryDelayMs: 50,
      };
      await sender.query('BEGIN');
      await sender.query('LOCK TABLE messages IN ROW EXCLUSIVE MODE');
      const started = Date.now();
      await expect(applySqlSources(session, options)).rejects.toThrow(
        /Gave up migrating the database after 3 attempts: each waited more than 200 ms \(lock_timeout\)[^]*lock timeout/,
      );
      // Three waits of 200 ms and two pauses (50, 100 ms), not forever.
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(700);
      expect(elapsed).toBeLessThan(5000);
      expect(await purgeEventsBody(session)).not.toContain('count(*) + 0');

      // The send ends while the deploy retries: a later attempt gets the lock.
      const applying = applySqlSources(session, { ...options, lockAttempts: 10 }).catch(
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      await sender.query('COMMIT');
      expect(await applying).toBe('applied');
      expect(await purgeEventsBody(session)).toContain('count(*) + 0');
    } finally {
      await Promise.all([migrating.end(), sender.end()]);
      await server.drop();
    }
  }, 20_000);
});
