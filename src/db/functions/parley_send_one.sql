-- One send, in the calling transaction (see parley_send_messages). Returns {"created": true|false,
-- "message": {…}} (false: the sender's earlier message with this client_msg_id, which may be in another
-- conversation: the caller checks), or {"refused": "<reason>"} with one of conversation_not_found (no live
-- conversation), not_a_member (with "conversation_type": whether the sender may see the conversation is the
-- application's rule, isVisible in access/permissions.ts), role_may_not_send (the sender's role is not one
-- of `p_send_roles`, the roles the permission table lets send), conversation_archived,
-- thread_target_elsewhere and thread_root_deleted. A refused send has written nothing.
--
-- No check raises: in a batch an exception would roll back every send in it, and catching one per send
-- would cost a subtransaction each. Everything is checked before anything is written: the conversation's
-- row lock is taken first and the archive and role are checked under it, and the message is inserted
-- before the conversation's seq counter moves, so a send that finds its client_msg_id taken by a concurrent
-- send leaves nothing behind and returns that send's message.
CREATE OR REPLACE FUNCTION parley_send_one(
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
  v_last_seq bigint;
  v_role text;
  v_target record;
  v_root_id uuid;
  v_root_deleted_at timestamptz;
  v_seq bigint;
  v_read_seq bigint;
  v_message jsonb;
BEGIN
  -- A retry returns the original: the caller checks it belongs to this conversation.
  IF p_client_msg_id IS NOT NULL THEN
    SELECT to_jsonb(m) - 'search_vector' INTO v_message FROM messages m
    WHERE m.tenant_id = p_tenant AND m.sender_id = p_sender AND m.client_msg_id = p_client_msg_id;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'message', v_message);
    END IF;
  END IF;

  -- The conversation's row lock, taken first and held to commit: every check below reads the locked row,
  -- the seq is allocated under it (so a conversation's messages commit in seq order), and event ids follow
  -- commit order within the conversation.
  SELECT c.type, c.archived_at, c.last_message_seq, cm.role INTO v_type, v_archived_at, v_last_seq, v_role
  FROM conversations c
  LEFT JOIN conversation_members cm
    ON cm.tenant_id = c.tenant_id AND cm.conversation_id = c.id AND cm.user_id = p_sender
  WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.deleted_at IS NULL
  FOR NO KEY UPDATE OF c;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refused', 'conversation_not_found');
  END IF;
  IF v_role IS NULL THEN
    RETURN jsonb_build_object('refused', 'not_a_member', 'conversation_type', v_type);
  END IF;
  IF NOT (v_role = ANY (p_send_roles)) THEN
    RETURN jsonb_build_object('refused', 'role_may_not_send');
  END IF;
  IF v_archived_at IS NOT NULL THEN
    RETURN jsonb_build_object('refused', 'conversation_archived');
  END IF;

  IF p_thread_target IS NOT NULL THEN
    SELECT m.conversation_id, m.thread_root_id, m.deleted_at INTO v_target FROM messages m
    WHERE m.tenant_id = p_tenant AND m.id = p_thread_target;
    IF NOT FOUND OR v_target.conversation_id <> p_conversation THEN
      RETURN jsonb_build_object('refused', 'thread_target_elsewhere');
    END IF;
    -- A reply to a reply joins the same thread.
    v_root_id := coalesce(v_target.thread_root_id, p_thread_target);
    v_root_deleted_at := v_target.deleted_at;
    IF v_target.thread_root_id IS NOT NULL THEN
      SELECT m.deleted_at INTO v_root_deleted_at FROM messages m
      WHERE m.tenant_id = p_tenant AND m.id = v_root_id;
    END IF;
    IF v_root_deleted_at IS NOT NULL THEN
      RETURN jsonb_build_object('refused', 'thread_root_deleted');
    END IF;
  END IF;

  v_seq := v_last_seq + 1;
  INSERT INTO messages AS m
    (tenant_id, conversation_id, seq, id, sender_id, text, mentions, thread_root_id, metadata, client_msg_id)
  VALUES
    (p_tenant, p_conversation, v_seq, p_id, p_sender, p_text, p_mentions, v_root_id, p_metadata, p_client_msg_id)
  ON CONFLICT (tenant_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING
  RETURNING to_jsonb(m) - 'search_vector' INTO v_message;
  IF NOT FOUND THEN
    -- A concurrent send with this client_msg_id committed after the check above (the insert waited for
    -- it): its message is the answer, and this send has written nothing.
    SELECT to_jsonb(m) - 'search_vector' INTO v_message FROM messages m
    WHERE m.tenant_id = p_tenant AND m.sender_id = p_sender AND m.client_msg_id = p_client_msg_id;
    RETURN jsonb_build_object('created', false, 'message', v_message);
  END IF;

  UPDATE conversations c SET
    last_message_seq = v_seq,
    last_activity_at = now(),
    last_main_seq = CASE WHEN v_root_id IS NULL THEN v_seq ELSE c.last_main_seq END,
    first_main_seq = CASE WHEN v_root_id IS NULL THEN coalesce(c.first_main_seq, v_seq) ELSE c.first_main_seq END
  WHERE c.tenant_id = p_tenant AND c.id = p_conversation;

  IF v_root_id IS NOT NULL THEN
    UPDATE messages m SET reply_count = m.reply_count + 1, last_reply_at = now()
    WHERE m.tenant_id = p_tenant AND m.id = v_root_id;
  END IF;

  -- Sending marks the conversation read for the sender. Nothing follows the newest message, so the
  -- sender's unread counts are 0 (set here, so the member trigger need not count them).
  UPDATE conversation_members cm
  SET last_read_seq = parley_moved_watermark(cm.last_read_seq, v_seq), unread_count = 0, mention_count = 0
  WHERE cm.tenant_id = p_tenant AND cm.conversation_id = p_conversation AND cm.user_id = p_sender
  RETURNING cm.last_read_seq INTO v_read_seq;

  -- The members for whom the message is unread (parley_is_unread) count it, where members keep counters
  -- (channels count by scanning: see parley_keeps_unread_counters). Inlined, the rule's condition on the
  -- thread root refers to no row, and a reply in a thread skips the update as a one-time filter.
  IF parley_keeps_unread_counters(v_type) THEN
    UPDATE conversation_members cm
    SET unread_count = cm.unread_count + 1,
        mention_count = cm.mention_count + parley_is_unread_mention(
          cm.user_id, cm.last_read_seq, v_seq, p_sender, v_root_id, NULL, p_mentions)::int
    WHERE cm.tenant_id = p_tenant AND cm.conversation_id = p_conversation
      AND parley_is_unread(cm.user_id, cm.last_read_seq, v_seq, p_sender, v_root_id, NULL);
  END IF;

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

REVOKE ALL ON FUNCTION parley_send_one(uuid, text, uuid, uuid, text, text[], uuid, jsonb, text, text[], jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_send_one(uuid, text, uuid, uuid, text, text[], uuid, jsonb, text, text[], jsonb) TO parley_app;
