-- Which tus uploads still hold their bytes (`parley attachments gc`, docs/ATTACHMENTS.md): of the upload
-- ids named by objects found under storage's `tus/` namespace, those whose row exists and is not finished
-- (its `key` is null once the bytes are an attachment's). The others' objects belong to nobody. The ids
-- are Parley's own, unique across tenants, and the `tus/` keys carry no tenant. SECURITY DEFINER: every
-- tenant's; it returns only ids, which the caller got from storage.
CREATE OR REPLACE FUNCTION parley_upload_holds(p_ids uuid[])
RETURNS TABLE (id uuid)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  SELECT DISTINCT u.id FROM uploads u WHERE u.id = ANY (p_ids) AND u.key IS NOT NULL
$$;

REVOKE ALL ON FUNCTION parley_upload_holds(uuid[]) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION parley_upload_holds(uuid[]) TO parley_app;
