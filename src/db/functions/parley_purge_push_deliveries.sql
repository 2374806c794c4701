-- Retention of pushes given up on (failed), with the event log's (PARLEY_EVENT_RETENTION_DAYS), for every
-- tenant: sent ones are deleted as they go, and a pending one is never purged (the sender finishes it).
-- SECURITY DEFINER: see parley_purge_events.
CREATE OR REPLACE FUNCTION parley_purge_push_deliveries(max_age interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH purged AS (
    DELETE FROM push_deliveries d
    WHERE d.status = 'failed' AND d.created_at < now() - max_age
    RETURNING 1
  )
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_push_deliveries(interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_push_deliveries(interval) TO parley_app;
