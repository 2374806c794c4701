-- The head of each given webhook lane (docs/BACKGROUND.md), with all the sender needs to send it: the
-- oldest pending delivery (event order; tests and notices by creation), its endpoint's url, sealed secrets
-- and state, and the logged event it carries (null when it carries a payload, or when retention deleted
-- it). A lane with nothing pending has a row with a null delivery_id. `p_lanes` is a JSON array of
-- {tenant_id, endpoint_id, lane}. The snapshot is the position a replayed event's cursor resumes from.
-- SECURITY DEFINER, like the claim that calls it: the sender works for every tenant at once; it is granted
-- to the server's role only and is called with lanes the sender claimed, never with a caller's input.
CREATE OR REPLACE FUNCTION parley_webhook_lane_heads(p_lanes jsonb)
RETURNS TABLE (
  tenant_id uuid, endpoint_id uuid, lane uuid,
  delivery_id uuid, source text, type text, event_id bigint, cursor text, payload jsonb, message_id text,
  attempts integer,
  url text, secrets jsonb, endpoint_disabled boolean,
  event_tx text, event_conversation_id uuid, event_type text, event_seq bigint, event_subject_user_id text,
  event_is_private boolean, event_data jsonb, event_created_at timestamptz,
  snapshot text
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  SELECT x.tenant_id, x.endpoint_id, x.lane,
         d.id, d.source, d.type, d.event_id, d.cursor, d.payload, d.message_id, d.attempts,
         ep.url, ep.secrets, ep.disabled_at IS NOT NULL,
         e.tx::text, e.conversation_id, e.type, e.seq::bigint, e.subject_user_id, e.is_private, e.data,
         e.created_at,
         pg_current_snapshot()::text
  FROM jsonb_to_recordset(p_lanes) AS x(tenant_id uuid, endpoint_id uuid, lane uuid)
  JOIN webhook_endpoints ep ON ep.tenant_id = x.tenant_id AND ep.id = x.endpoint_id
  LEFT JOIN LATERAL (
    SELECT d.*
    FROM webhook_deliveries d
    WHERE d.tenant_id = x.tenant_id AND d.endpoint_id = x.endpoint_id AND d.lane = x.lane
      AND d.status = 'pending'
    ORDER BY d.event_id, d.id
    LIMIT 1
  ) d ON true
  LEFT JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
$$;

REVOKE ALL ON FUNCTION parley_webhook_lane_heads(jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_webhook_lane_heads(jsonb) TO parley_app;
