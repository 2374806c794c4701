-- The webhook sender's record of attempts that succeeded (docs/BACKGROUND.md), for lanes of any tenants in
-- one call: each delivery `delivered`, its endpoint's failing streak ended, and its lane scheduled: kept by
-- its claimer a lease longer when `keep` and more is pending, due now when more is pending but not kept (a
-- burst ran out), idle when nothing is pending or the endpoint is disabled. Returns the heads of the kept
-- lanes (parley_webhook_lane_heads), so the sender goes on without another round trip.
-- `p_items` is a JSON array of {tenant_id, endpoint_id, lane, delivery_id, status, keep}. A delivery no
-- longer pending (sent twice after a lapsed lease) is left as it is. Failures are recorded by the sender
-- one at a time, in its tenant's transaction (they move the schedule and may disable an endpoint).
-- Locks are taken in the order every writer of these rows follows, each kind sorted: the endpoints (FOR NO
-- KEY UPDATE, which deliveries' foreign keys do not wait for), then the lanes, then the deliveries.
-- SECURITY DEFINER: see parley_webhook_lane_heads.
CREATE OR REPLACE FUNCTION parley_record_webhook_successes(p_items jsonb, p_lease interval)
RETURNS TABLE (
  tenant_id uuid, endpoint_id uuid, lane uuid,
  delivery_id uuid, source text, type text, event_id bigint, cursor text, payload jsonb, message_id text,
  attempts integer,
  url text, secrets jsonb, endpoint_disabled boolean,
  event_tx text, event_conversation_id uuid, event_type text, event_seq bigint, event_subject_user_id text,
  event_is_private boolean, event_data jsonb, event_created_at timestamptz,
  snapshot text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  kept jsonb;
BEGIN
  PERFORM 1
  FROM webhook_endpoints ep
  WHERE (ep.tenant_id, ep.id) IN (
    SELECT x.tenant_id, x.endpoint_id FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, endpoint_id uuid))
  ORDER BY ep.tenant_id, ep.id
  FOR NO KEY UPDATE OF ep;

  UPDATE webhook_endpoints ep SET failing_since = NULL, updated_at = now()
  WHERE (ep.tenant_id, ep.id) IN (
      SELECT x.tenant_id, x.endpoint_id FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, endpoint_id uuid))
    AND ep.failing_since IS NOT NULL AND ep.disabled_at IS NULL;

  PERFORM 1
  FROM webhook_lanes l
  WHERE (l.tenant_id, l.endpoint_id, l.lane) IN (
    SELECT x.tenant_id, x.endpoint_id, x.lane
    FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, endpoint_id uuid, lane uuid))
  ORDER BY l.tenant_id, l.endpoint_id, l.lane
  FOR UPDATE OF l;

  UPDATE webhook_deliveries d
  SET status = 'delivered', attempts = d.attempts + 1, next_attempt_at = NULL, last_attempt_at = now(),
      last_status_code = x.status, last_error = NULL
  FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, delivery_id uuid, status integer)
  WHERE d.tenant_id = x.tenant_id AND d.id = x.delivery_id AND d.status = 'pending';

  WITH lanes AS (
    SELECT x.tenant_id, x.endpoint_id, x.lane, x.keep, ep.disabled_at IS NULL AS enabled,
           EXISTS (SELECT 1 FROM webhook_deliveries d
                   WHERE d.tenant_id = x.tenant_id AND d.endpoint_id = x.endpoint_id AND d.lane = x.lane
                     AND d.status = 'pending') AS more
    FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, endpoint_id uuid, lane uuid, keep boolean)
    JOIN webhook_endpoints ep ON ep.tenant_id = x.tenant_id AND ep.id = x.endpoint_id
  ), scheduled AS (
    UPDATE webhook_lanes l
    SET next_attempt_at = CASE
      WHEN NOT (s.enabled AND s.more) THEN NULL
      WHEN s.keep THEN now() + p_lease
      ELSE now()
    END
    FROM lanes s
    WHERE l.tenant_id = s.tenant_id AND l.endpoint_id = s.endpoint_id AND l.lane = s.lane
    RETURNING l.tenant_id, l.endpoint_id, l.lane, s.enabled AND s.more AND s.keep AS is_kept
  )
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'tenant_id', s.tenant_id, 'endpoint_id', s.endpoint_id, 'lane', s.lane)) FILTER (WHERE s.is_kept),
         '[]'::jsonb)
  INTO kept
  FROM scheduled s;

  RETURN QUERY SELECT * FROM parley_webhook_lane_heads(kept);
END;
$$;

REVOKE ALL ON FUNCTION parley_record_webhook_successes(jsonb, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_record_webhook_successes(jsonb, interval) TO parley_app;
