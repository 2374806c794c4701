-- A message as readers see it (parley_timeline_page, parley_conversation_list): every column but the search
-- vector, which no reader needs (and which a row's JSON would spell out in full). security_invoker:
-- row-level security applies as on messages itself. Dropped and created again whenever the sources are
-- applied (src/db/sql-sources.ts), so its columns may change.
CREATE OR REPLACE VIEW message_rows WITH (security_invoker = true) AS
SELECT tenant_id, conversation_id, seq, id, sender_id, text, mentions, thread_root_id, reply_count,
       last_reply_at, metadata, client_msg_id, pinned_at, pinned_by, created_at, edited_at, deleted_at,
       attachments
FROM messages;

GRANT SELECT ON message_rows TO parley_app;
