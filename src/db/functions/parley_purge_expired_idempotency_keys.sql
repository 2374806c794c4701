-- Cross-tenant maintenance the app role may trigger but not perform with its own rights: the function
-- runs as the tables' owner (not subject to row-level security) and does exactly one thing.
CREATE OR REPLACE FUNCTION parley_purge_expired_idempotency_keys(max_age interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH purged AS (DELETE FROM idempotency_keys WHERE created_at < now() - max_age RETURNING 1)
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_expired_idempotency_keys(interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_expired_idempotency_keys(interval) TO parley_app;
