-- Which conversations keep their members' unread and mention counts in conversation_members (see
-- parley_unread_scan): direct and group ones. Channels, up to thousands of members, where a send would
-- update every member's row, are counted by the scan when read, and their members' counters stay 0.
-- Written once here for the six places that choose between the two: the send's increment, both triggers,
-- the recount, and the two readers (parley_unread_counts, parley_conversation_list). Inlined.
CREATE OR REPLACE FUNCTION parley_keeps_unread_counters(p_conversation_type text) RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
  SELECT p_conversation_type <> 'channel'
$$;

REVOKE ALL ON FUNCTION parley_keeps_unread_counters(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_keeps_unread_counters(text) TO parley_app;
