-- Uploads never sent (docs/ATTACHMENTS.md, "Life cycle"): attachments no message names, older than
-- `max_age`, of every tenant, are deleted; each row's trigger (parley_attachment_removed) queues the
-- removal of its bytes and gives them back to the quota, in this same statement. A few at a time
-- (`p_limit`), oldest first, so one call never holds many rows. SECURITY DEFINER: see parley_purge_events.
CREATE OR REPLACE FUNCTION parley_purge_unsent_attachments(max_age interval, p_limit integer)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH old AS (
    SELECT a.tenant_id, a.id
    FROM attachments a
    WHERE a.message_id IS NULL AND a.created_at < now() - max_age
    ORDER BY a.created_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), purged AS (
    DELETE FROM attachments a USING old
    WHERE a.tenant_id = old.tenant_id AND a.id = old.id AND a.message_id IS NULL
    RETURNING 1
  )
  SELECT count(*) FROM purged
$$;

REVOKE ALL ON FUNCTION parley_purge_unsent_attachments(interval, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_purge_unsent_attachments(interval, integer) TO parley_app;
