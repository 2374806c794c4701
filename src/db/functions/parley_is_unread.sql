-- What counts as unread, the contract's rule, written once: a message is unread for a member when it is on
-- the main timeline (not a thread reply), not deleted, sent by someone else, and after the member's read
-- watermark. Every count applies it through this function (parley_unread_scan's scan, the increment in
-- parley_send_one, the update trigger parley_count_updated_messages), and parley_is_unread_mention adds
-- "and mentions the member" to it.
--
-- A scalar SQL function of one expression, IMMUTABLE and not STRICT, so PostgreSQL inlines it into each
-- caller's query before planning: a scan still finds its range on messages_main_timeline_idx (the
-- `thread_root_id IS NULL` of its predicate), and a condition on a caller's parameter alone (a send's
-- thread root) still becomes a one-time filter. A change here is a change of every count.
CREATE OR REPLACE FUNCTION parley_is_unread(
  p_reader text, p_read_seq bigint, p_seq bigint, p_sender text, p_thread_root uuid, p_deleted_at timestamptz
) RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
  SELECT p_seq > p_read_seq AND p_thread_root IS NULL AND p_deleted_at IS NULL AND p_sender <> p_reader
$$;

REVOKE ALL ON FUNCTION parley_is_unread(text, bigint, bigint, text, uuid, timestamptz) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_is_unread(text, bigint, bigint, text, uuid, timestamptz) TO parley_app;
