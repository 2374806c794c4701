-- A page of a conversation's main timeline in one round trip. As a transaction (BEGIN, the tenant setting,
-- the conversation and the caller's membership, the page, the page's reactions, COMMIT) a page was six round
-- trips; the page itself, an index range scan, costs far less than any one of them. One call, committing by
-- itself, reads all of it. SECURITY INVOKER: it runs as parley_app, under row-level security.
--
-- The application decides what the answer means (messages.repository.ts readTimelinePage and
-- messages.service.ts listHistory): whether the caller may see the conversation (isVisible, from its type
-- and the caller's role) and read it, and, asking for one more row than a page on each side it reads,
-- has_more_before/after. This reads the live conversation's type and the caller's role (the conversation is
-- null when there is no live one), and the rows only when the role is one of `p_read_roles`, the roles the
-- permission table lets read. `p_around` (a message id) is the anchor: the rows before it and the rows from
-- it on; without it, rows before `p_before_seq` (the latest when null) and rows from `p_from_seq`. A side
-- whose limit is 0 is not read. Rows are message_rows' (as json, not jsonb: building jsonb, binary with its
-- keys sorted, took about 16 µs a message row against about half that for json, which the driver parses the
-- same way); reactions are summarized per (message, emoji) for the caller.
CREATE OR REPLACE FUNCTION parley_timeline_page(
  p_tenant uuid,
  p_viewer text,
  p_conversation uuid,
  p_around uuid,
  p_before_seq bigint,
  p_before_limit integer,
  p_from_seq bigint,
  p_from_limit integer,
  p_read_roles text[]
) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
  v_type text;
  v_first_main_seq bigint;
  v_last_main_seq bigint;
  v_role text;
  v_anchor_seq bigint;
  v_before json := '[]';
  v_before_ids uuid[] := '{}';
  v_from json := '[]';
  v_from_ids uuid[] := '{}';
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);

  SELECT c.type, c.first_main_seq, c.last_main_seq, cm.role
  INTO v_type, v_first_main_seq, v_last_main_seq, v_role
  FROM conversations c
  LEFT JOIN conversation_members cm
    ON cm.tenant_id = c.tenant_id AND cm.conversation_id = c.id AND cm.user_id = p_viewer
  WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.deleted_at IS NULL;
  IF NOT FOUND THEN
    RETURN json_build_object('conversation', NULL);
  END IF;
  IF v_role IS NULL OR NOT (v_role = ANY (p_read_roles)) THEN
    RETURN json_build_object('conversation', json_build_object('type', v_type, 'role', v_role));
  END IF;

  IF p_around IS NOT NULL THEN
    SELECT m.seq INTO v_anchor_seq FROM messages m
    WHERE m.tenant_id = p_tenant AND m.id = p_around
      AND m.conversation_id = p_conversation AND m.thread_root_id IS NULL;
    IF NOT FOUND THEN
      RETURN json_build_object(
        'conversation', json_build_object('type', v_type, 'role', v_role), 'anchor_found', false);
    END IF;
    p_before_seq := v_anchor_seq;
    p_from_seq := v_anchor_seq;
  END IF;

  IF p_before_limit > 0 THEN
    SELECT coalesce(json_agg(page ORDER BY page.seq DESC), '[]'), coalesce(array_agg(page.id), '{}')
    INTO v_before, v_before_ids
    FROM (
      SELECT * FROM message_rows m
      WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation AND m.thread_root_id IS NULL
        AND m.seq < coalesce(p_before_seq, 9223372036854775807)
      ORDER BY m.seq DESC
      LIMIT p_before_limit
    ) page;
  END IF;

  IF p_from_limit > 0 THEN
    SELECT coalesce(json_agg(page ORDER BY page.seq), '[]'), coalesce(array_agg(page.id), '{}')
    INTO v_from, v_from_ids
    FROM (
      SELECT * FROM message_rows m
      WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation AND m.thread_root_id IS NULL
        AND m.seq >= p_from_seq
      ORDER BY m.seq
      LIMIT p_from_limit
    ) page;
  END IF;

  RETURN json_build_object(
    'conversation', json_build_object(
      'type', v_type, 'role', v_role, 'first_main_seq', v_first_main_seq, 'last_main_seq', v_last_main_seq),
    'anchor_found', true,
    'before', v_before,
    'from', v_from,
    'reactions', parley_reaction_summaries(p_tenant, p_viewer, v_before_ids || v_from_ids));
END;
$$;

REVOKE ALL ON FUNCTION parley_timeline_page(uuid, text, uuid, uuid, bigint, integer, bigint, integer, text[]) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_timeline_page(uuid, text, uuid, uuid, bigint, integer, bigint, integer, text[]) TO parley_app;
