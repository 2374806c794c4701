-- The push sender's claim (docs/PUSH.md): up to `p_limit` pending pushes that are due, of every tenant,
-- oldest due first; each claimed one's next attempt moves a lease ahead, so no other process sends it
-- meanwhile, and a process that dies mid-send delays it by the lease only. Rows another process is
-- claiming are skipped (SKIP LOCKED), not waited for. SECURITY DEFINER: the sender works for every tenant,
-- and each push it returns is then handled in its own tenant's transaction, under row-level security; it
-- returns ids only.
CREATE OR REPLACE FUNCTION parley_claim_push_deliveries(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, id uuid)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH due AS (
    SELECT d.tenant_id, d.id
    FROM push_deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE push_deliveries d SET next_attempt_at = now() + p_lease
  FROM due
  WHERE d.tenant_id = due.tenant_id AND d.id = due.id
  RETURNING d.tenant_id, d.id
$$;

REVOKE ALL ON FUNCTION parley_claim_push_deliveries(integer, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_claim_push_deliveries(integer, interval) TO parley_app;
