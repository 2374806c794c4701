-- What operators see of background work (GET /metrics, `parley jobs status`), over every tenant: webhook
-- deliveries and Web Push messages waiting or failed, attachments waiting to be processed, stored objects
-- waiting to be removed (`retrying` once an attempt failed), how many and since when, and how far each
-- consumer of the event log is behind. Delivered (sent) ones are counted as they happen (a counter), not here: they
-- only grow. SECURITY
-- DEFINER: counts and times, never a tenant's data.
CREATE OR REPLACE FUNCTION parley_background_work_stats()
RETURNS TABLE (kind text, state text, items bigint, oldest timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  SELECT 'webhook', d.status, count(*), min(d.created_at)
  FROM webhook_deliveries d
  WHERE d.status IN ('pending', 'failed')
  GROUP BY d.status
  UNION ALL
  SELECT 'push', p.status, count(*), min(p.created_at)
  FROM push_deliveries p
  GROUP BY p.status
  UNION ALL
  SELECT 'attachment', 'pending', count(*), min(a.created_at)
  FROM attachments a
  WHERE a.status = 'pending'
  HAVING count(*) > 0
  UNION ALL
  SELECT 'storage_removal', CASE WHEN r.attempts > 1 OR r.last_error IS NOT NULL THEN 'retrying' ELSE 'pending' END,
         count(*), min(r.created_at)
  FROM storage_removals r
  GROUP BY 2
  UNION ALL
  SELECT 'consumer:' || c.consumer, 'position', count(*), min(c.prev_at)
  FROM event_consumers c
  GROUP BY c.consumer
$$;

REVOKE ALL ON FUNCTION parley_background_work_stats() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_background_work_stats() TO parley_app;
