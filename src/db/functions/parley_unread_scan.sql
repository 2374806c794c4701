-- Unread and mention counts are kept per member (conversation_members.unread_count and mention_count), for
-- direct and group conversations: scanning each conversation's messages after the member's watermark cost
-- one index range scan per conversation, 14 ms for a user in 1,000 conversations; kept, they are read like
-- any column. Channels (up to thousands of members, where a send would update every member's
-- row) keep being counted by the scan, and their members' counters stay 0.
--
-- The rule is the contract's, written once in parley_is_unread and parley_is_unread_mention: other people's
-- non-deleted main-timeline messages after the watermark, and of those, the ones mentioning the member.
-- Which conversations keep counters is parley_keeps_unread_counters. Who keeps the counts:
--   * a send (parley_send_one) adds the message to the other members' counts and sets the sender's to 0,
--     in the statement that moves the sender's watermark;
--   * a member's row, inserted, or with its watermark moved by a statement that leaves its counts as they
--     were (a read), is counted exactly from its watermark by a trigger (parley_count_member_unread);
--   * updated messages (deleted, or their mentions edited) change the counts by the difference, by a
--     trigger per statement over transition tables (parley_count_updated_messages), so an erasure of
--     thousands of messages is one UPDATE.
-- Sends count in the function rather than by a trigger on messages: the trigger pair cost PostgreSQL 20-30%
-- of its send throughput (pgbench of the send function, 8 clients). Whatever inserts messages in bulk
-- otherwise (the benchmarks' seeds) calls parley_recount_unread afterwards.
--
-- Exactness under concurrency rests on one rule, which every writer already follows for its events: a
-- statement that changes what counts, a watermark or a membership runs under its conversation's row lock
-- (sends update the row; reads, edits, deletions and member changes lock it FOR UPDATE; erasure locks the
-- erased user's conversations first). Each statement then takes its snapshot after the lock, and sees
-- every earlier change of that conversation.

-- The rule as a scan from a watermark: a range scan of messages_main_timeline_idx, costing what is unread.
-- The member trigger and parley_recount_unread count with it, and so do channels at read time
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
  SELECT count(*)::int,
         (count(*) FILTER (WHERE parley_is_unread_mention(
            p_user, p_after_seq, x.seq, x.sender_id, x.thread_root_id, x.deleted_at, x.mentions)))::int
  FROM messages x
  WHERE p_scan AND x.tenant_id = p_tenant AND x.conversation_id = p_conversation
    AND parley_is_unread(p_user, p_after_seq, x.seq, x.sender_id, x.thread_root_id, x.deleted_at)
$$;

REVOKE ALL ON FUNCTION parley_unread_scan(boolean, uuid, uuid, text, bigint) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_unread_scan(boolean, uuid, uuid, text, bigint) TO parley_app;
