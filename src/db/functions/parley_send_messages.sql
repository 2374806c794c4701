-- Sends in batches: parley_send_messages takes every send of one tenant that was waiting for a connection
-- and does them in one call and one commit (the application's SendBatcher collects them). Under load each
-- send as its own call and commit spent more time in the round trip, the call's overhead and the wait for
-- its WAL flush than in its writes; a batch pays those once.
--
-- Both functions are SECURITY INVOKER (the default) and run as parley_app, so row-level security applies to
-- every statement in them. The application decides who may send (p_send_roles comes from the one
-- permission table in access/permissions.ts) and who may see the conversation (a not_a_member refusal
-- carries the conversation's type for it), builds the event's message view (event_data; this fills in
-- what only the database knows: seq, created_at and the thread root) and resolves mentions; these check and
-- write.
--
-- The sends of one tenant, in one call: sets the tenant, then runs parley_send_one for each and returns
-- their results as a JSON array in the order given. p_sends is a JSON array of objects with sender,
-- conversation, id, text, mentions (array), thread_target, metadata, client_msg_id and event_data.
--
-- The sends run in conversation id order, so two batches (or a batch and an erasure, which locks its
-- conversations in id order too) take conversation locks in the same order and cannot deadlock on them;
-- sends to one conversation keep the order given. Run on its own, the call commits every send at once.
CREATE OR REPLACE FUNCTION parley_send_messages(p_tenant uuid, p_sends jsonb, p_send_roles text[]) RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  v_results jsonb[] := array_fill(NULL::jsonb, ARRAY[jsonb_array_length(p_sends)]);
  v_send record;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  FOR v_send IN
    SELECT s.value AS body, s.position
    FROM jsonb_array_elements(p_sends) WITH ORDINALITY AS s(value, position)
    ORDER BY (s.value ->> 'conversation')::uuid, s.position
  LOOP
    v_results[v_send.position] := parley_send_one(
      p_tenant,
      v_send.body ->> 'sender',
      (v_send.body ->> 'conversation')::uuid,
      (v_send.body ->> 'id')::uuid,
      v_send.body ->> 'text',
      ARRAY(SELECT jsonb_array_elements_text(v_send.body -> 'mentions')),
      (v_send.body ->> 'thread_target')::uuid,
      v_send.body -> 'metadata',
      v_send.body ->> 'client_msg_id',
      p_send_roles,
      v_send.body -> 'event_data');
  END LOOP;
  RETURN to_jsonb(v_results);
END;
$$;

REVOKE ALL ON FUNCTION parley_send_messages(uuid, jsonb, text[]) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_send_messages(uuid, jsonb, text[]) TO parley_app;
