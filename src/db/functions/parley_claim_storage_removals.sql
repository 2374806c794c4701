-- The storage remover's claim (docs/ATTACHMENTS.md, "Life cycle"): up to `p_limit` stored objects due for
-- removal, of every tenant (deleted tenants' too), oldest due first; each claimed one's next attempt moves a
-- lease ahead, so a process that dies mid-removal delays it by the lease only. SECURITY DEFINER: the
-- remover works for every tenant; each removal is then finished or rescheduled in its tenant's transaction.
CREATE OR REPLACE FUNCTION parley_claim_storage_removals(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, id bigint, key text)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH due AS (
    SELECT r.tenant_id, r.id
    FROM storage_removals r
    WHERE r.next_attempt_at <= now()
    ORDER BY r.next_attempt_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE storage_removals r SET next_attempt_at = now() + p_lease, attempts = r.attempts + 1
  FROM due
  WHERE r.tenant_id = due.tenant_id AND r.id = due.id
  RETURNING r.tenant_id, r.id, r.key
$$;

REVOKE ALL ON FUNCTION parley_claim_storage_removals(integer, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_claim_storage_removals(integer, interval) TO parley_app;
