-- A page of the caller's conversation list in one round trip. As a transaction it was seven (BEGIN, the
-- tenant setting, the page, the unread counts, the last messages, their reactions, COMMIT). One call,
-- committing by itself, reads the page of memberships most recently active first, each with its unread and
-- mention counts (the member's counters; a scan for channels, as countUnread does), its last main-timeline
-- message, and those messages' reactions for the caller, as json (not jsonb: see parley_timeline_page).
-- SECURITY INVOKER: it runs as parley_app, under row-level security. Filters and the keyset cursor mean
-- what the list's earlier query did.
CREATE OR REPLACE FUNCTION parley_conversation_list(
  p_tenant uuid,
  p_user text,
  p_type text,
  p_archived boolean,
  p_after_activity_at timestamptz,
  p_after_id uuid,
  p_limit integer
) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
  v_rows json;
  v_message_ids uuid[];
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);

  SELECT coalesce(json_agg(json_build_object(
           'conversation', page.c,
           'member', page.m,
           'unread_count',
             CASE WHEN parley_keeps_unread_counters((page.c).type) THEN (page.m).unread_count ELSE u.unread END,
           'mention_count',
             CASE WHEN parley_keeps_unread_counters((page.c).type) THEN (page.m).mention_count ELSE u.mentions END,
           'last_message', last.message)
         ORDER BY (page.c).last_activity_at DESC, (page.c).id DESC), '[]'),
         coalesce(array_agg((last.message ->> 'id')::uuid) FILTER (WHERE last.message IS NOT NULL), '{}')
  INTO v_rows, v_message_ids
  FROM (
    -- The page first: the counts and last messages below are read for its rows only.
    SELECT c, m
    FROM conversation_members m
    JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
    WHERE m.tenant_id = p_tenant AND m.user_id = p_user
      AND (p_type IS NULL OR c.type = p_type)
      AND (p_archived IS NULL OR (c.archived_at IS NOT NULL) = p_archived)
      AND (p_after_id IS NULL OR (c.last_activity_at, c.id) < (p_after_activity_at, p_after_id))
    ORDER BY c.last_activity_at DESC, c.id DESC
    LIMIT p_limit
  ) page
  LEFT JOIN LATERAL parley_unread_scan(
    NOT parley_keeps_unread_counters((page.c).type) AND (page.c).last_main_seq > (page.m).last_read_seq,
    p_tenant, (page.c).id, p_user, (page.m).last_read_seq
  ) u ON true
  LEFT JOIN LATERAL (
    SELECT row_to_json(x) AS message
    FROM message_rows x
    WHERE x.tenant_id = p_tenant AND x.conversation_id = (page.c).id AND x.seq = (page.c).last_main_seq
  ) last ON true;

  RETURN json_build_object(
    'rows', v_rows,
    'reactions', parley_reaction_summaries(p_tenant, p_user, v_message_ids));
END;
$$;

REVOKE ALL ON FUNCTION parley_conversation_list(uuid, text, text, boolean, timestamptz, uuid, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_conversation_list(uuid, text, text, boolean, timestamptz, uuid, integer) TO parley_app;
