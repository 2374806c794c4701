-- The messages trigger (see parley_unread_scan for who keeps the counts): updated messages, deleted or with
-- their mentions edited, change the unread and mention counts of the members who have not read them by
-- the difference, in one UPDATE per statement over its transition tables.
CREATE OR REPLACE FUNCTION parley_count_updated_messages() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  UPDATE conversation_members cm
  SET unread_count = cm.unread_count + d.unread, mention_count = cm.mention_count + d.mentions
  FROM (
    SELECT o.tenant_id, o.conversation_id, member.user_id,
           sum(parley_is_unread(
                 member.user_id, member.last_read_seq, n.seq, n.sender_id, n.thread_root_id, n.deleted_at)::int
               - parley_is_unread(
                 member.user_id, member.last_read_seq, o.seq, o.sender_id, o.thread_root_id, o.deleted_at)::int
              )::int AS unread,
           sum(parley_is_unread_mention(member.user_id, member.last_read_seq,
                 n.seq, n.sender_id, n.thread_root_id, n.deleted_at, n.mentions)::int
               - parley_is_unread_mention(member.user_id, member.last_read_seq,
                 o.seq, o.sender_id, o.thread_root_id, o.deleted_at, o.mentions)::int)::int AS mentions
    FROM before_update o
    JOIN after_update n ON n.tenant_id = o.tenant_id AND n.id = o.id
    JOIN conversations c
      ON c.tenant_id = o.tenant_id AND c.id = o.conversation_id AND parley_keeps_unread_counters(c.type)
    -- Only the members for whom the message would be unread were it not deleted: for the others it counts
    -- neither before nor after (an update never moves a message's seq, sender or thread). Inlined, these
    -- are join conditions, so an erasure of thousands of messages joins only the members they concern.
    JOIN conversation_members member
      ON member.tenant_id = o.tenant_id AND member.conversation_id = o.conversation_id
     AND parley_is_unread(member.user_id, member.last_read_seq, o.seq, o.sender_id, o.thread_root_id, NULL)
    WHERE n.deleted_at IS DISTINCT FROM o.deleted_at OR n.mentions IS DISTINCT FROM o.mentions
    GROUP BY o.tenant_id, o.conversation_id, member.user_id
  ) d
  WHERE cm.tenant_id = d.tenant_id AND cm.conversation_id = d.conversation_id AND cm.user_id = d.user_id
    AND (d.unread <> 0 OR d.mentions <> 0);
  RETURN NULL;
END;
$$;

-- Every UPDATE of messages fires it (a trigger with transition tables cannot name columns); rows whose
-- deletion and mentions did not change are left out before any join.
CREATE OR REPLACE TRIGGER messages_count_unread_on_update
  AFTER UPDATE ON messages
  REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
  FOR EACH STATEMENT EXECUTE FUNCTION parley_count_updated_messages();
