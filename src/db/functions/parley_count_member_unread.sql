-- The member trigger (see parley_unread_scan for who keeps the counts): counts a member's unread messages
-- when its row is inserted or its watermark moves, and counts nothing when the watermark is at or past the
-- conversation's last main-timeline message: nothing can be unread then. That is every send (the sender's
-- watermark moves to the new message) and every "read up to the latest". Scanning from the watermark there
-- would find nothing but take the scan's plan, and PL/pgSQL keeps a plan for the session: one planned while
-- messages was nearly empty (a new deployment) read the tenant's whole index of messages by sender for each
-- send.
CREATE OR REPLACE FUNCTION parley_count_member_unread() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_type text;
  v_last_main_seq bigint;
BEGIN
  SELECT c.type, c.last_main_seq INTO v_type, v_last_main_seq FROM conversations c
  WHERE c.tenant_id = NEW.tenant_id AND c.id = NEW.conversation_id;
  IF NOT parley_keeps_unread_counters(v_type) OR NEW.last_read_seq >= coalesce(v_last_main_seq, 0) THEN
    NEW.unread_count := 0;
    NEW.mention_count := 0;
  ELSE
    SELECT u.unread, u.mentions INTO NEW.unread_count, NEW.mention_count
    FROM parley_unread_scan(true, NEW.tenant_id, NEW.conversation_id, NEW.user_id, NEW.last_read_seq) u;
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER conversation_members_count_unread_on_insert
  BEFORE INSERT ON conversation_members
  FOR EACH ROW EXECUTE FUNCTION parley_count_member_unread();

-- Not when the statement moving the watermark sets the counts itself (a send sets the sender's to 0).
CREATE OR REPLACE TRIGGER conversation_members_count_unread_on_read
  BEFORE UPDATE OF last_read_seq ON conversation_members
  FOR EACH ROW WHEN (OLD.last_read_seq IS DISTINCT FROM NEW.last_read_seq
                     AND OLD.unread_count = NEW.unread_count AND OLD.mention_count = NEW.mention_count)
  EXECUTE FUNCTION parley_count_member_unread();
