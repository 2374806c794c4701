-- From here on the database's functions, views and triggers are defined once each, in src/db/functions/,
-- and applied after the migrations whenever they change (src/db/sql-sources.ts, docs/DATABASE.md). No
-- migration defines one again; a migration only drops what no source defines any more, or what CREATE OR
-- REPLACE cannot change (a function's arguments or result type).
--
-- The applied sources are recorded here, beside Drizzle's own journal (the app role has no access to this
-- schema): their hash and the newest migration at the time, so that an unchanged start costs one query.
CREATE TABLE drizzle.parley_sql_sources (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  state text NOT NULL,
  applied_at timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
-- Their sources now take the roles that may read (p_read_roles, from the permission table), instead of
-- letting any member read: the old signatures go, the sources create the new ones.
DROP FUNCTION parley_timeline_page(uuid, text, uuid, uuid, bigint, integer, bigint, integer);
--> statement-breakpoint
DROP FUNCTION parley_search_messages(text, text, text, uuid, text, timestamptz, timestamptz, real, uuid, integer);
