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
           sum((n.deleted_at IS NULL)::int - (o.deleted_at IS NULL)::int)::int AS unread,
           sum((n.deleted_at IS NULL AND member.user_id = ANY (n.mentions))::int
               - (o.deleted_at IS NULL AND member.user_id = ANY (o.mentions))::int)::int AS mentions
    FROM before_update o
    JOIN after_update n ON n.tenant_id = o.tenant_id AND n.id = o.id
    JOIN conversations c
      ON c.tenant_id = o.tenant_id AND c.id = o.conversation_id AND c.type <> 'channel'
    JOIN conversation_members member
      ON member.tenant_id = o.tenant_id AND member.conversation_id = o.conversation_id
     AND member.user_id <> o.sender_id AND member.last_read_seq < o.seq
    WHERE o.thread_root_id IS NULL
      AND (n.deleted_at IS DISTINCT FROM o.deleted_at OR n.mentions IS DISTINCT FROM o.mentions)
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
