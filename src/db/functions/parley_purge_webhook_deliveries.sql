-- Retention of webhook deliveries, with the event log's (PARLEY_EVENT_RETENTION_DAYS): deliveries done
-- with (delivered or failed) older than max_age are deleted for every tenant, and so are the lanes left
-- idle with nothing pending. A lane a dispatcher is arming meanwhile is not lost: its upsert either waits
-- for this delete and inserts the lane again, or holds the row first, and the delete, seeing it due, skips
-- it. SECURITY DEFINER: see parley_purge_events.
CREATE OR REPLACE FUNCTION parley_purge_webhook_deliveries(max_age interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH purged AS (
    DELETE FROM webhook_deliveries d
    WHERE d.status <> 'pending' AND d.created_at < now() - max_age
    RETURNING 1
  ), idle AS (
    DELETE FROM webhook_lanes l
    WHERE l.next_attempt_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.tenant_id = l.tenant_id AND d.endpoint_id = l.endpoint_id AND d.lane = l.lane
                        AND d.status = 'pending')
  )
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_webhook_deliveries(interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_webhook_deliveries(interval) TO parley_app;
