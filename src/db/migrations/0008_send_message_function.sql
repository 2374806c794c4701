-- Sending a message in one round trip. A send touches five tables (conversations, conversation_members,
-- messages, a thread root, events) under the conversation's row lock; as separate statements from the
-- application that was ten round trips a message, each one a write syscall and a statement planned under
-- row-level security. As one call it is one, PL/pgSQL keeps the statements' plans for the session, and the
-- call commits on its own.
--
-- SECURITY INVOKER (the default): it runs as parley_app, so row-level security applies to every statement
-- in it exactly as it would to the application's own. The application decides who may send
-- (p_send_roles comes from the one permission table in conversation-access.ts), builds the event's message
-- view (p_event_data; this fills in what only the database knows: seq and created_at) and resolves mentions;
-- this function checks and writes. Failures raise SQLSTATEs of class PX, which messages.service.ts maps to
-- the API's errors; everything the call did is rolled back with them.
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

  -- Sending marks the conversation read for the sender.
  UPDATE conversation_members cm SET last_read_seq = greatest(cm.last_read_seq, v_seq)
  WHERE cm.tenant_id = p_tenant AND cm.conversation_id = p_conversation AND cm.user_id = p_sender
  RETURNING cm.last_read_seq INTO v_read_seq;

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
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_send_message(uuid, text, uuid, uuid, text, text[], uuid, jsonb, text, text[], jsonb) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION parley_send_message(uuid, text, uuid, uuid, text, text[], uuid, jsonb, text, text[], jsonb) TO parley_app;
