-- Retention: events older than max_age (30 days by default, PARLEY_EVENT_RETENTION_DAYS) are deleted for
-- every tenant; a cursor from before that answers 410 cursor_expired. SECURITY DEFINER: see 0002.
CREATE OR REPLACE FUNCTION parley_purge_events(max_age interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH purged AS (DELETE FROM events WHERE created_at < now() - max_age RETURNING 1)
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_events(interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_events(interval) TO parley_app;
