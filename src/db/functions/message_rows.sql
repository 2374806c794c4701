-- A page of a conversation's main timeline in one round trip. As a transaction (BEGIN, the tenant setting,
-- the conversation and the caller's membership, the page, the page's reactions, COMMIT) a page was six round
-- trips; the page itself, an index range scan, costs far less than any one of them. One call, committing by
-- itself, reads all of it. SECURITY INVOKER: it runs as parley_app, under row-level security.
--
-- Rows travel as `json`, not `jsonb`: building jsonb (binary, keys sorted) took about 16 µs a message row
-- against about half that for json, which the driver parses the same way.

-- A message as readers see it: every column but the search vector, which no reader needs (and which a
-- row's JSON would spell out in full). security_invoker: row-level security applies as on messages itself.
CREATE OR REPLACE VIEW message_rows WITH (security_invoker = true) AS
SELECT tenant_id, conversation_id, seq, id, sender_id, text, mentions, thread_root_id, reply_count,
       last_reply_at, metadata, client_msg_id, pinned_at, pinned_by, created_at, edited_at, deleted_at
FROM messages;
