-- A feed's read of the event log in one round trip. Each process reads each active tenant's log after
-- every wake-up; as a transaction (BEGIN, the tenant setting, the snapshot, the page, COMMIT) that was five
-- round trips between a commit and its delivery. One call, committing by itself, takes the snapshot and
-- reads the page. SECURITY INVOKER: it runs as parley_app, under row-level security.
--
-- The window is what `p_now` sees and `p_prev` did not (docs/REALTIME.md). With `p_now` null, the window
-- ends at the snapshot taken when the call starts; the page itself is read with the later snapshot of the
-- query, which sees everything that one does, and the visibility test keeps it to the window. Every row
-- carries the window's end as `snapshot`; when the page is empty, one row with only `snapshot` is returned.
CREATE OR REPLACE FUNCTION parley_read_events(
  p_tenant uuid,
  p_prev text,
  p_now text,
  p_after_id bigint,
  p_limit integer
) RETURNS TABLE (
  snapshot text,
  id bigint,
  tx text,
  conversation_id uuid,
  type text,
  seq bigint,
  subject_user_id text,
  is_private boolean,
  data jsonb,
  created_at timestamptz
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_prev pg_snapshot := p_prev::pg_snapshot;
  v_now pg_snapshot := coalesce(p_now::pg_snapshot, pg_current_snapshot());
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  -- Planned for these snapshots at each call (EXECUTE), never as a cached generic plan: only with the
  -- actual xmin does the planner see that the (tenant_id, tx) index narrows the scan to the window's end
  -- of the log. A generic plan scanned the tenant's whole log on every read.
  -- The window is found through the (tenant_id, tx) index first (a materialized CTE), then sorted: left to
  -- itself, the planner would rather walk the primary key in id order from the tenant's first event,
  -- filtering, until it had a page; under a fast-growing log that read fell further behind every time.
  RETURN QUERY EXECUTE
    'WITH w AS MATERIALIZED (
       SELECT e.id, e.tx, e.conversation_id, e.type, e.seq, e.subject_user_id, e.is_private, e.data,
              e.created_at
       FROM events e
       WHERE e.tenant_id = $2
         AND e.tx >= pg_snapshot_xmin($3)
         AND NOT pg_visible_in_snapshot(e.tx, $3)
         AND pg_visible_in_snapshot(e.tx, $1)
         AND e.id > $4)
     SELECT $1::text, w.id, w.tx::text, w.conversation_id, w.type, w.seq, w.subject_user_id, w.is_private,
            w.data, w.created_at
     FROM w
     ORDER BY w.id
     LIMIT $5'
    USING v_now, p_tenant, v_prev, p_after_id, p_limit;
  IF NOT FOUND THEN
    RETURN QUERY SELECT v_now::text, NULL::bigint, NULL::text, NULL::uuid, NULL::text, NULL::bigint,
                        NULL::text, NULL::boolean, NULL::jsonb, NULL::timestamptz;
  END IF;
END;
$$;

REVOKE ALL ON FUNCTION parley_read_events(uuid, text, text, bigint, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_read_events(uuid, text, text, bigint, integer) TO parley_app;
