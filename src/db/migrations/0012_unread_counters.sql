ALTER TABLE "conversation_members" ADD COLUMN "unread_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "mention_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Unread and mention counts kept per member, for direct and group conversations. GET /v1/unread and the
-- conversation list had counted them by scanning each conversation's messages after the member's
-- watermark: one index range scan per conversation, 14 ms for a user in 1,000 conversations. Kept here, they
-- are read like any column. Channels (up to thousands of members, where a send would update every member's
-- row) keep being counted by the scan, and their members' counters stay 0.
--
-- The rule is the contract's: other people's non-deleted main-timeline messages after the watermark, and of
-- those, the ones mentioning the member. Triggers keep it, so no write path can forget it (bulk seeding,
-- erasure and the send function included):
--   * a member's row, inserted or with its watermark moved, is counted exactly from its watermark;
--   * inserted messages add to the counts of the members whose watermark is before them;
--   * updated messages (deleted, or their mentions edited) change those counts by the difference.
-- Message triggers run per statement over transition tables, so a bulk insert or an erasure is one UPDATE.
--
-- Exactness under concurrency rests on one rule, which every writer already follows for its events: a
-- statement that changes what counts, a watermark or a membership runs under its conversation's row lock
-- (sends update the row; reads, edits, deletions and member changes lock it FOR UPDATE; erasure locks the
-- erased user's conversations first). Each trigger statement then takes its snapshot after the lock, and
-- sees every earlier change of that conversation.
-- The rule as a scan from a watermark: a range scan of messages_main_timeline_idx, costing what is unread.
-- The member trigger and the backfill below count with it, and so do channels at read time
-- (countUnread in reads.repository.ts, parley_conversation_list).
CREATE OR REPLACE FUNCTION parley_unread_scan(
  p_tenant uuid, p_conversation uuid, p_user text, p_after_seq bigint
) RETURNS TABLE (unread integer, mentions integer)
LANGUAGE sql
STABLE
AS $$
  SELECT count(*)::int, (count(*) FILTER (WHERE p_user = ANY (x.mentions)))::int
  FROM messages x
  WHERE x.tenant_id = p_tenant AND x.conversation_id = p_conversation
    AND x.seq > p_after_seq AND x.thread_root_id IS NULL
    AND x.deleted_at IS NULL AND x.sender_id <> p_user
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION parley_count_member_unread() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM conversations c
             WHERE c.tenant_id = NEW.tenant_id AND c.id = NEW.conversation_id AND c.type = 'channel') THEN
    NEW.unread_count := 0;
    NEW.mention_count := 0;
  ELSE
    SELECT u.unread, u.mentions INTO NEW.unread_count, NEW.mention_count
    FROM parley_unread_scan(NEW.tenant_id, NEW.conversation_id, NEW.user_id, NEW.last_read_seq) u;
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER conversation_members_count_unread_on_insert
  BEFORE INSERT ON conversation_members
  FOR EACH ROW EXECUTE FUNCTION parley_count_member_unread();
--> statement-breakpoint
CREATE TRIGGER conversation_members_count_unread_on_read
  BEFORE UPDATE OF last_read_seq ON conversation_members
  FOR EACH ROW WHEN (OLD.last_read_seq IS DISTINCT FROM NEW.last_read_seq)
  EXECUTE FUNCTION parley_count_member_unread();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION parley_count_inserted_messages() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  UPDATE conversation_members cm
  SET unread_count = cm.unread_count + d.unread, mention_count = cm.mention_count + d.mentions
  FROM (
    SELECT n.tenant_id, n.conversation_id, member.user_id, count(*)::int AS unread,
           (count(*) FILTER (WHERE member.user_id = ANY (n.mentions)))::int AS mentions
    FROM inserted n
    JOIN conversations c
      ON c.tenant_id = n.tenant_id AND c.id = n.conversation_id AND c.type <> 'channel'
    JOIN conversation_members member
      ON member.tenant_id = n.tenant_id AND member.conversation_id = n.conversation_id
     AND member.user_id <> n.sender_id AND member.last_read_seq < n.seq
    WHERE n.thread_root_id IS NULL AND n.deleted_at IS NULL
    GROUP BY n.tenant_id, n.conversation_id, member.user_id
  ) d
  WHERE cm.tenant_id = d.tenant_id AND cm.conversation_id = d.conversation_id AND cm.user_id = d.user_id;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER messages_count_unread_on_insert
  AFTER INSERT ON messages
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION parley_count_inserted_messages();
--> statement-breakpoint
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
--> statement-breakpoint
-- Every UPDATE of messages fires it (a trigger with transition tables cannot name columns); rows whose
-- deletion and mentions did not change are left out before any join.
CREATE TRIGGER messages_count_unread_on_update
  AFTER UPDATE ON messages
  REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
  FOR EACH STATEMENT EXECUTE FUNCTION parley_count_updated_messages();
--> statement-breakpoint
-- The counts of the members there already: moving each watermark onto itself would not fire the trigger
-- (its WHEN), so they are counted here, the same way.
UPDATE conversation_members cm
SET (unread_count, mention_count) = (
  SELECT u.unread, u.mentions
  FROM parley_unread_scan(cm.tenant_id, cm.conversation_id, cm.user_id, cm.last_read_seq) u)
FROM conversations c
WHERE c.tenant_id = cm.tenant_id AND c.id = cm.conversation_id AND c.type <> 'channel';
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_unread_scan(uuid, uuid, text, bigint) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION parley_unread_scan(uuid, uuid, text, bigint) TO parley_app;
