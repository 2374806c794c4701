-- The tenants a consumer of the event log follows (event_consumers), and whether each has events its
-- position has not read (or is mid-window): for the consumer's periodic sweep, which reads only those.
-- Wake-ups name a tenant, but one can be lost (Redis down, a process restarting); the sweep finds what they
-- missed with one query over every tenant (the (tenant_id, tx) index of events), not a transaction each.
-- SECURITY DEFINER: it lists ids across tenants; each tenant's log is then read under its own setting.
CREATE OR REPLACE FUNCTION parley_event_consumer_tenants(p_consumer text)
RETURNS TABLE (tenant_id uuid, behind boolean)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  SELECT c.tenant_id,
         c.now IS NOT NULL OR EXISTS (
           SELECT 1 FROM events e
           WHERE e.tenant_id = c.tenant_id
             AND e.tx >= pg_snapshot_xmin(c.prev::pg_snapshot)
             AND NOT pg_visible_in_snapshot(e.tx, c.prev::pg_snapshot))
  FROM event_consumers c
  WHERE c.consumer = p_consumer
$$;

REVOKE ALL ON FUNCTION parley_event_consumer_tenants(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_event_consumer_tenants(text) TO parley_app;
