-- The version of the applied function sources (SQL_SOURCES_VERSIONS in src/db/sql-sources-versions.ts),
-- which only increases: a process whose sources are of a lower version than the database's leaves them
-- alone (docs/DATABASE.md, "Mixed versions"). Rows written before it count as version 0. Also, a process
-- of an older version, which knows no migration past 0016, now leaves the sources of this one alone.
ALTER TABLE drizzle.parley_sql_sources ADD COLUMN version integer DEFAULT 0 NOT NULL;
