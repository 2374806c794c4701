-- Counts every direct and group member exactly, from scratch: for bulk loads that insert messages other
-- than through parley_send_messages (the benchmarks' seeds). Migration 0012 ran it once, for the members
-- there already. Only the owner may run it.
CREATE OR REPLACE FUNCTION parley_recount_unread() RETURNS void
LANGUAGE sql
AS $$
  UPDATE conversation_members cm
  SET (unread_count, mention_count) = (
    SELECT u.unread, u.mentions
    FROM parley_unread_scan(true, cm.tenant_id, cm.conversation_id, cm.user_id, cm.last_read_seq) u)
  FROM conversations c
  WHERE c.tenant_id = cm.tenant_id AND c.id = cm.conversation_id AND parley_keeps_unread_counters(c.type)
$$;

REVOKE ALL ON FUNCTION parley_recount_unread() FROM PUBLIC;
