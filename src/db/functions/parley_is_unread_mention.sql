-- An unread mention: an unread message (parley_is_unread) whose mentions name the member. Inlined like
-- parley_is_unread.
CREATE OR REPLACE FUNCTION parley_is_unread_mention(
  p_reader text, p_read_seq bigint, p_seq bigint, p_sender text, p_thread_root uuid, p_deleted_at timestamptz,
  p_mentions text[]
) RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
  SELECT parley_is_unread(p_reader, p_read_seq, p_seq, p_sender, p_thread_root, p_deleted_at)
    AND p_reader = ANY (p_mentions)
$$;

REVOKE ALL ON FUNCTION parley_is_unread_mention(text, bigint, bigint, text, uuid, timestamptz, text[]) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_is_unread_mention(text, bigint, bigint, text, uuid, timestamptz, text[])
  TO parley_app;
