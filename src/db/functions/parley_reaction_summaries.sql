-- The reactions of some messages as one viewer sees them: one entry per (message, emoji) with its count
-- and whether the viewer is among those who reacted, first reacted first, then by emoji. The one definition
-- of a reaction summary: parley_timeline_page and parley_conversation_list call it, and so does the
-- application for every other message it presents (summarizeReactions in reactions.repository.ts).
CREATE OR REPLACE FUNCTION parley_reaction_summaries(p_tenant uuid, p_viewer text, p_message_ids uuid[])
RETURNS json
LANGUAGE sql
STABLE
AS $$
  SELECT coalesce(json_agg(json_build_object(
           'message_id', r.message_id, 'emoji', r.emoji, 'count', r.count, 'me', r.me)
         ORDER BY r.first_at, r.emoji), '[]')
  FROM (
    SELECT mr.message_id, mr.emoji, count(*)::int AS count, bool_or(mr.user_id = p_viewer) AS me,
           min(mr.created_at) AS first_at
    FROM message_reactions mr
    WHERE mr.tenant_id = p_tenant AND mr.message_id = ANY (p_message_ids)
    GROUP BY mr.message_id, mr.emoji
  ) r
$$;

REVOKE ALL ON FUNCTION parley_reaction_summaries(uuid, text, uuid[]) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_reaction_summaries(uuid, text, uuid[]) TO parley_app;
