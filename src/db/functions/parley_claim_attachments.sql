-- The attachment processor's claim (docs/ATTACHMENTS.md): up to `p_limit` pending attachments that are due,
-- of every tenant, oldest due first; each claimed one's next attempt moves a lease ahead, so no other
-- process works it meanwhile, and a process that dies mid-work delays it by the lease only. Rows another
-- process is claiming are skipped (SKIP LOCKED). SECURITY DEFINER: the processor works for every tenant,
-- and each attachment it returns is then read and written in its own tenant's transaction, under row-level
-- security; it returns ids only.
CREATE OR REPLACE FUNCTION parley_claim_attachments(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, id uuid)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH due AS (
    SELECT a.tenant_id, a.id
    FROM attachments a
    WHERE a.status = 'pending' AND a.next_attempt_at <= now()
    ORDER BY a.next_attempt_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE attachments a SET next_attempt_at = now() + p_lease, attempts = a.attempts + 1
  FROM due
  WHERE a.tenant_id = due.tenant_id AND a.id = due.id
  RETURNING a.tenant_id, a.id
$$;

REVOKE ALL ON FUNCTION parley_claim_attachments(integer, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_claim_attachments(integer, interval) TO parley_app;
