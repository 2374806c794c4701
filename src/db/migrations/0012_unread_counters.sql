ALTER TABLE "conversation_members" ADD COLUMN "unread_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD COLUMN "mention_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Unread and mention counts kept per member, for direct and group conversations. GET /v1/unread and the
-- conversation list had counted them by scanning each conversation's messages after the member's
-- watermark: one index range scan per conversation, 14 ms for a user in 1,000 conversations. Kept here, they
-- are read like any column. Channels (up to thousands of members, where a send would update every member's
-- row) keep being counted by the scan, and their members' counters stay 0.
--
-- The rule is the contract's: other people's non-deleted main-timeline messages after the watermark, and of
-- those, the ones mentioning the member. Who keeps it:
--   * a send (parley_send_message, redefined below) adds the message to the other members' counts and sets
--     the sender's to 0, in the statement that moves the sender's watermark;
--   * a member's row, inserted, or with its watermark moved by a statement that leaves its counts as they
--     were (a read), is counted exactly from its watermark by a trigger;
--   * updated messages (deleted, or their mentions edited) change the counts by the difference, by a
--     trigger per statement over transition tables, so an erasure of thousands of messages is one UPDATE.
-- Sends count in the function rather than by a trigger on messages: the trigger pair cost PostgreSQL 20-30%
-- of its send throughput (pgbench of parley_send_message, 8 clients). Whatever inserts messages in bulk
-- otherwise (the benchmarks' seeds) calls parley_recount_unread afterwards.
--
-- Exactness under concurrency rests on one rule, which every writer already follows for its events: a
-- statement that changes what counts, a watermark or a membership runs under its conversation's row lock
-- (sends update the row; reads, edits, deletions and member changes lock it FOR UPDATE; erasure locks the
-- erased user's conversations first). Each statement then takes its snapshot after the lock, and sees
-- every earlier change of that conversation.

-- The rule as a scan from a watermark: a range scan of messages_main_timeline_idx, costing what is unread.
-- The member trigger and the backfill below count with it, and so do channels at read time
-- (parley_unread_counts, parley_conversation_list). Unless `p_scan`, it counts nothing without
-- touching messages: readers pass whether a row needs the scan at all (a channel with something after the
-- watermark). PostgreSQL inlines the function, and that condition, which refers only to the caller's row,
-- becomes a one-time filter before the scan; a condition outside the call would be applied after the count.
CREATE OR REPLACE FUNCTION parley_unread_scan(
  p_scan boolean, p_tenant uuid, p_conversation uuid, p_user text, p_after_seq bigint
) RETURNS TABLE (unread integer, mentions integer)
LANGUAGE sql
STABLE
AS $$
  SELECT count(*)::int, (count(*) FILTER (WHERE p_user = ANY (x.mentions)))::int
  FROM messages x
  WHERE p_scan AND x.tenant_id = p_tenant AND x.conversation_id = p_conversation
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
    FROM parley_unread_scan(true, NEW.tenant_id, NEW.conversation_id, NEW.user_id, NEW.last_read_seq) u;
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER conversation_members_count_unread_on_insert
  BEFORE INSERT ON conversation_members
  FOR EACH ROW EXECUTE FUNCTION parley_count_member_unread();
--> statement-breakpoint
-- Not when the statement moving the watermark sets the counts itself (a send sets the sender's to 0).
CREATE TRIGGER conversation_members_count_unread_on_read
  BEFORE UPDATE OF last_read_seq ON conversation_members
  FOR EACH ROW WHEN (OLD.last_read_seq IS DISTINCT FROM NEW.last_read_seq
                     AND OLD.unread_count = NEW.unread_count AND OLD.mention_count = NEW.mention_count)
  EXECUTE FUNCTION parley_count_member_unread();
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
-- One member's counts in its conversations (all of them, or those of `p_conversation_ids`), by the rule:
-- the member's counters in direct and group conversations, parley_unread_scan in channels, and only when
-- something follows the watermark. A function for its cached plan: planning the query under row-level
-- security took as long as running it over 1,000 conversations (2.5 ms each). It sets the tenant itself, so
-- it runs on its own (GET /v1/unread: one round trip) or inside a transaction of the same tenant.
CREATE OR REPLACE FUNCTION parley_unread_counts(p_tenant uuid, p_user text, p_conversation_ids uuid[])
RETURNS TABLE (conversation_id uuid, last_read_seq bigint, unread_count integer, mention_count integer)
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  RETURN QUERY
  SELECT m.conversation_id, m.last_read_seq,
         CASE WHEN c.type = 'channel' THEN u.unread ELSE m.unread_count END,
         CASE WHEN c.type = 'channel' THEN u.mentions ELSE m.mention_count END
  FROM conversation_members m
  JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
  LEFT JOIN LATERAL parley_unread_scan(
    c.type = 'channel' AND c.last_main_seq > m.last_read_seq,
    m.tenant_id, m.conversation_id, m.user_id, m.last_read_seq
  ) u ON true
  WHERE m.tenant_id = p_tenant AND m.user_id = p_user
    AND (p_conversation_ids IS NULL OR m.conversation_id = ANY (p_conversation_ids));
END;
$$;
--> statement-breakpoint
-- Counts every direct and group member exactly, from scratch: for the members there already when this
-- migration runs, and for bulk loads that insert messages other than through parley_send_message.
CREATE OR REPLACE FUNCTION parley_recount_unread() RETURNS void
LANGUAGE sql
AS $$
  UPDATE conversation_members cm
  SET (unread_count, mention_count) = (
    SELECT u.unread, u.mentions
    FROM parley_unread_scan(true, cm.tenant_id, cm.conversation_id, cm.user_id, cm.last_read_seq) u)
  FROM conversations c
  WHERE c.tenant_id = cm.tenant_id AND c.id = cm.conversation_id AND c.type <> 'channel'
$$;
--> statement-breakpoint
SELECT parley_recount_unread();
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_recount_unread() FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_unread_scan(boolean, uuid, uuid, text, bigint) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION parley_unread_scan(boolean, uuid, uuid, text, bigint) TO parley_app;
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_unread_counts(uuid, text, uuid[]) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION parley_unread_counts(uuid, text, uuid[]) TO parley_app;
--> statement-breakpoint
-- parley_send_message as in migration 0008, and it keeps the counts of the members (see the top).
CREATE OR REPLACE FUNCTION parley_send_message(
  p_tenant uuid,
  p_sender text,
  p_conversation uuid,
  p_id uuid,
  p_text text,
  p_mentions text[],
  p_thread_target uuid,
  p_metadata jsonb,
  p_client_msg_id text,
  p_send_roles text[],
  p_event_data jsonb
) RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  v_type text;
  v_archived_at timestamptz;
  v_role text;
  v_target record;
  v_root_id uuid;
  v_root_deleted_at timestamptz;
  v_seq bigint;
  v_read_seq bigint;
  v_message jsonb;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);

  -- A retry returns the original: the caller checks it belongs to this conversation.
  IF p_client_msg_id IS NOT NULL THEN
    SELECT to_jsonb(m) - 'search_vector' INTO v_message FROM messages m
    WHERE m.tenant_id = p_tenant AND m.sender_id = p_sender AND m.client_msg_id = p_client_msg_id;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'message', v_message);
    END IF;
  END IF;

  SELECT c.type, c.archived_at, cm.role INTO v_type, v_archived_at, v_role
  FROM conversations c
  LEFT JOIN conversation_members cm
    ON cm.tenant_id = c.tenant_id AND cm.conversation_id = c.id AND cm.user_id = p_sender
  WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.deleted_at IS NULL;
  -- Channels are visible to every user of the tenant; other conversations only to their members.
  IF NOT FOUND OR (v_role IS NULL AND v_type <> 'channel') THEN
    RAISE EXCEPTION USING ERRCODE = 'PX404', MESSAGE = 'conversation not found';
  END IF;
  IF v_role IS NULL OR NOT (v_role = ANY (p_send_roles)) THEN
    RAISE EXCEPTION USING ERRCODE = 'PX403', MESSAGE = 'role may not send';
  END IF;
  IF v_archived_at IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PX409', MESSAGE = 'conversation archived';
  END IF;

  IF p_thread_target IS NOT NULL THEN
    SELECT m.conversation_id, m.thread_root_id, m.deleted_at INTO v_target FROM messages m
    WHERE m.tenant_id = p_tenant AND m.id = p_thread_target;
    IF NOT FOUND OR v_target.conversation_id <> p_conversation THEN
      RAISE EXCEPTION USING ERRCODE = 'PX400', MESSAGE = 'thread_root_id is not a message of this conversation';
    END IF;
    -- A reply to a reply joins the same thread.
    v_root_id := coalesce(v_target.thread_root_id, p_thread_target);
    v_root_deleted_at := v_target.deleted_at;
    IF v_target.thread_root_id IS NOT NULL THEN
      SELECT m.deleted_at INTO v_root_deleted_at FROM messages m
      WHERE m.tenant_id = p_tenant AND m.id = v_root_id;
    END IF;
    IF v_root_deleted_at IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'PX410', MESSAGE = 'thread root deleted';
    END IF;
  END IF;

  -- The seq: incrementing the counter takes the conversation's row lock and holds it to commit, so a
  -- conversation's messages commit in seq order, and a rolled back send gives its seq back.
  UPDATE conversations c SET
    last_message_seq = c.last_message_seq + 1,
    last_activity_at = now(),
    last_main_seq = CASE WHEN v_root_id IS NULL THEN c.last_message_seq + 1 ELSE c.last_main_seq END,
    first_main_seq = CASE WHEN v_root_id IS NULL THEN coalesce(c.first_main_seq, c.last_message_seq + 1)
                          ELSE c.first_main_seq END
  WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.deleted_at IS NULL
  RETURNING c.last_message_seq, c.archived_at INTO v_seq, v_archived_at;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PX404', MESSAGE = 'conversation not found';
  END IF;
  -- Archived between the check above and the lock: the lock's view wins.
  IF v_archived_at IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PX409', MESSAGE = 'conversation archived';
  END IF;

  INSERT INTO messages AS m
    (tenant_id, conversation_id, seq, id, sender_id, text, mentions, thread_root_id, metadata, client_msg_id)
  VALUES
    (p_tenant, p_conversation, v_seq, p_id, p_sender, p_text, p_mentions, v_root_id, p_metadata, p_client_msg_id)
  ON CONFLICT (tenant_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING
  RETURNING to_jsonb(m) - 'search_vector' INTO v_message;
  IF NOT FOUND THEN
    -- A concurrent send with this client_msg_id committed first: roll back, and let the caller return it.
    RAISE EXCEPTION USING ERRCODE = 'PX001', MESSAGE = 'client_msg_id taken';
  END IF;

  IF v_root_id IS NOT NULL THEN
    UPDATE messages m SET reply_count = m.reply_count + 1, last_reply_at = now()
    WHERE m.tenant_id = p_tenant AND m.id = v_root_id;
  END IF;

  -- Sending marks the conversation read for the sender. Nothing follows the newest message, so the
  -- sender's unread counts are 0 (set here, so the member trigger need not count them).
  UPDATE conversation_members cm
  SET last_read_seq = greatest(cm.last_read_seq, v_seq), unread_count = 0, mention_count = 0
  WHERE cm.tenant_id = p_tenant AND cm.conversation_id = p_conversation AND cm.user_id = p_sender
  RETURNING cm.last_read_seq INTO v_read_seq;

  -- A main-timeline message is unread for the other members of a direct or group conversation (channels
  -- count by scanning: see parley_unread_counts).
  IF v_root_id IS NULL AND v_type <> 'channel' THEN
    UPDATE conversation_members cm
    SET unread_count = cm.unread_count + 1,
        mention_count = cm.mention_count + (cm.user_id = ANY (p_mentions))::int
    WHERE cm.tenant_id = p_tenant AND cm.conversation_id = p_conversation AND cm.user_id <> p_sender
      AND cm.last_read_seq < v_seq;
  END IF;

  -- The conversation's row lock is held (the UPDATE above), so event ids follow commit order.
  INSERT INTO events (tenant_id, conversation_id, type, seq, subject_user_id, is_private, data) VALUES
    (p_tenant, p_conversation, 'message.created', v_seq, NULL, false,
     p_event_data || jsonb_build_object(
       'seq', v_seq,
       'thread_root_id', v_root_id,
       'created_at', to_char((v_message ->> 'created_at')::timestamptz AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))),
    (p_tenant, p_conversation, 'read.updated', NULL, p_sender, true,
     jsonb_build_object('user_id', p_sender, 'last_read_seq', coalesce(v_read_seq, v_seq)));

  RETURN jsonb_build_object('created', true, 'message', v_message);
END;
$$;
