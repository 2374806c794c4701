-- Where a member's read watermark goes when asked to move to `p_to`: a watermark never moves backwards, so
-- a late or repeated read (another device, a retry) changes nothing. Written once for its two movers: a
-- read (advanceReadWatermark in reads.repository.ts) and a send, which reads the sender's own message
-- (parley_send_one). Inlined.
CREATE OR REPLACE FUNCTION parley_moved_watermark(p_current bigint, p_to bigint) RETURNS bigint
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
  SELECT greatest(p_current, p_to)
$$;

REVOKE ALL ON FUNCTION parley_moved_watermark(bigint, bigint) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_moved_watermark(bigint, bigint) TO parley_app;
