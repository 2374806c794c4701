-- What holds stored objects (`parley attachments gc`, docs/ATTACHMENTS.md): for each (tenant, attachment)
-- named by objects found in storage, the keys its row names (its upload and renditions; none when there is
-- no row) and whether it is busy: an upload under way (a live reservation under the attachment's id, taken
-- before its bytes are stored and released with the row's insert) or processing (`pending`, whose
-- renditions are stored before the row names them). Objects of an attachment that is not busy and whose
-- row does not name them belong to nobody. SECURITY DEFINER: every tenant's; it returns keys and flags,
-- which the caller got from storage.
CREATE OR REPLACE FUNCTION parley_attachment_holds(p_items jsonb)
RETURNS TABLE (tenant_id uuid, id uuid, keys text[], is_busy boolean)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  SELECT x.tenant_id, x.id,
         coalesce(
           (SELECT array_agg(k.key) FROM (
              SELECT a.upload_key AS key
              UNION
              SELECT r ->> 'key' FROM jsonb_array_elements(a.renditions) AS r
            ) k WHERE k.key IS NOT NULL),
           '{}'::text[]),
         coalesce(a.status = 'pending', false)
           OR EXISTS (SELECT 1 FROM storage_reservations s
                      WHERE s.tenant_id = x.tenant_id AND s.id = x.id AND s.expires_at > now())
  FROM jsonb_to_recordset(p_items) AS x(tenant_id uuid, id uuid)
  LEFT JOIN attachments a ON a.tenant_id = x.tenant_id AND a.id = x.id
$$;

REVOKE ALL ON FUNCTION parley_attachment_holds(jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_attachment_holds(jsonb) TO parley_app;
