-- The role the server's queries run as (see src/db/schema/rls.ts). Roles are cluster-wide, so several
-- databases on one server share it; creating it tolerates another migration creating it concurrently.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parley_app') THEN
    CREATE ROLE parley_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
--> statement-breakpoint
-- The connecting role takes on parley_app (a startup option or SET ROLE), so it must be a member. Grant
-- only when it is not one already: re-granting needs ADMIN OPTION, which a mere member lacks.
-- On PostgreSQL 16+ membership and the right to SET ROLE are separate: a CREATEROLE creator is an ADMIN-only
-- member, so check for SET there.
DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'parley_app',
                     CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END) THEN
    EXECUTE format('GRANT parley_app TO %I', current_user);
  END IF;
END
$$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO parley_app;
--> statement-breakpoint
-- Every table and sequence this role creates from here on is usable (never owned) by parley_app.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO parley_app;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO parley_app;
