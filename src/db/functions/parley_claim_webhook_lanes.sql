-- The webhook sender's claim (docs/BACKGROUND.md): up to `p_limit` lanes (an endpoint and a conversation)
-- whose head delivery is due, of every tenant, oldest due first; each claimed lane's next attempt moves a
-- lease ahead, so no other process sends its head meanwhile, and a process that dies mid-send delays it by
-- the lease only. Lanes another process is claiming are skipped (SKIP LOCKED), not waited for.
-- SECURITY DEFINER: the sender works for every tenant, and each lane it returns is then handled in its own
-- tenant's transaction, under row-level security; it returns ids only.
-- Not by row id (`ctid = ANY (...)`), tried: a lane updated and committed after this statement's snapshot
-- is locked by the CTE at its new version, which the UPDATE's snapshot cannot see, so it was skipped; with
-- the dispatcher arming lanes all the time, claims came back empty and deliveries stalled for minutes.
-- The join back on the key follows the row to its newest version. Its plan hashes the lanes table while it
-- is small; on a large one, probing the key is cheaper and chosen.
CREATE OR REPLACE FUNCTION parley_claim_webhook_lanes(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, endpoint_id uuid, lane uuid)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH due AS (
    SELECT l.tenant_id, l.endpoint_id, l.lane
    FROM webhook_lanes l
    WHERE l.next_attempt_at <= now()
    ORDER BY l.next_attempt_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE webhook_lanes l SET next_attempt_at = now() + p_lease
  FROM due
  WHERE l.tenant_id = due.tenant_id AND l.endpoint_id = due.endpoint_id AND l.lane = due.lane
  RETURNING l.tenant_id, l.endpoint_id, l.lane
$$;

REVOKE ALL ON FUNCTION parley_claim_webhook_lanes(integer, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_claim_webhook_lanes(integer, interval) TO parley_app;
