-- Message search through its indexes. Under row-level security PostgreSQL may not use an index condition
-- whose operator is not LEAKPROOF before the policy's check, and neither `@@` (ts_match_vq) nor ILIKE is:
-- as parley_app, every search read the user's conversations message by message (EXPLAIN: 100,000 rows
-- tested for one word, 52 ms) or scanned the whole table, and the GIN and trigram indexes went unused.
-- Marking those operators LEAKPROOF needs a superuser, which a managed PostgreSQL does not give.
--
-- So the search itself runs in this SECURITY DEFINER function, as the owner of the tables (who is not
-- subject to their policies), and filters by tenant explicitly: the tenant is the transaction's own
-- `app.tenant_id`, the very setting the policies read (no tenant set: no rows), and only conversations the
-- user may read are searched: those the user is a member of with one of `p_read_roles`, the roles the
-- permission table (access/permissions.ts) lets read. It returns message ids and ranks, nothing else: the caller reads the
-- messages themselves, their reactions and snippets as parley_app, under row-level security, so a hit of
-- another tenant could never be shown even if this function were wrong.
--
-- `p_has_attachments`: true, only messages with attachments; false, only those without; null, both.
--
-- Planned at each call with the actual query (EXECUTE ... USING): how selective the words are decides
-- between the GIN index and reading the member's conversations, and a cached generic plan cannot know it.
-- The signature before `p_has_attachments` was added: replaced, not overloaded.
DROP FUNCTION IF EXISTS parley_search_messages(text, text, text, uuid, text, timestamptz, timestamptz, real, uuid, integer, text[]);

CREATE OR REPLACE FUNCTION parley_search_messages(
  p_user text,
  p_text text,
  p_substring_pattern text,
  p_conversation uuid,
  p_sender text,
  p_since timestamptz,
  p_until timestamptz,
  p_after_rank real,
  p_after_id uuid,
  p_limit integer,
  p_read_roles text[],
  p_has_attachments boolean
) RETURNS TABLE (id uuid, rank real)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
  v_tenant uuid := nullif(current_setting('app.tenant_id', true), '')::uuid;
BEGIN
  IF v_tenant IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE $query$
    SELECT hits.id, hits.rank FROM (
      SELECT m.id,
             (ts_rank(m.search_vector, q.query)
              + CASE WHEN $3 IS NOT NULL AND m.text ILIKE $3 THEN 0.05 ELSE 0 END)::real AS rank
      FROM messages m
      CROSS JOIN (SELECT websearch_to_tsquery('english', $2) AS query) q
      JOIN conversation_members cm
        ON cm.tenant_id = m.tenant_id AND cm.conversation_id = m.conversation_id AND cm.user_id = $1
       AND cm.role = ANY ($12)
      JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
      WHERE m.tenant_id = $4
        AND m.deleted_at IS NULL
        AND (m.search_vector @@ q.query OR ($3 IS NOT NULL AND m.text ILIKE $3))
        AND ($5 IS NULL OR m.conversation_id = $5)
        AND ($6 IS NULL OR m.sender_id = $6)
        AND ($7 IS NULL OR m.created_at >= $7)
        AND ($8 IS NULL OR m.created_at < $8)
        AND ($13 IS NULL OR (m.attachments <> '[]'::jsonb) = $13)
    ) hits
    WHERE $10 IS NULL OR (hits.rank, hits.id) < ($9, $10)
    ORDER BY hits.rank DESC, hits.id DESC
    LIMIT $11
  $query$
  USING p_user, p_text, p_substring_pattern, v_tenant, p_conversation, p_sender, p_since, p_until,
        p_after_rank, p_after_id, p_limit, p_read_roles, p_has_attachments;
END;
$$;

REVOKE ALL ON FUNCTION parley_search_messages(text, text, text, uuid, text, timestamptz, timestamptz, real, uuid, integer, text[], boolean) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_search_messages(text, text, text, uuid, text, timestamptz, timestamptz, real, uuid, integer, text[], boolean) TO parley_app;
