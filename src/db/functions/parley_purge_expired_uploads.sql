-- Uploads past their expiry (docs/ATTACHMENTS.md, "Resumable and direct uploads"), of every tenant, are
-- deleted: an unfinished one's trigger (parley_upload_removed) queues the removal of what it stored, in this
-- same statement, and its quota reservation expires with it; a finished one is only forgotten. A few at a
-- time (`p_limit`), oldest first. SECURITY DEFINER: see parley_purge_events.
CREATE OR REPLACE FUNCTION parley_purge_expired_uploads(p_limit integer)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH old AS (
    SELECT u.tenant_id, u.id
    FROM uploads u
    WHERE u.expires_at < now()
    ORDER BY u.expires_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), purged AS (
    DELETE FROM uploads u USING old
    WHERE u.tenant_id = old.tenant_id AND u.id = old.id
    RETURNING 1
  )
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_expired_uploads(integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_expired_uploads(integer) TO parley_app;
