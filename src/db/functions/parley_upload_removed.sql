-- An upload row deleted before it finished, however it happens (it expired, the client terminated it, its
-- uploader was erased, its tenant deleted): what it stored so far is queued for removal, in the deleting
-- transaction (docs/ATTACHMENTS.md, "Resumable and direct uploads"). A finished row's `key` is null: its
-- bytes are an attachment's now. SECURITY DEFINER, as parley_attachment_removed: cascades of a tenant's
-- deletion run without a tenant bound to the transaction; it writes only rows of the upload's own tenant.
CREATE OR REPLACE FUNCTION parley_upload_removed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
  IF OLD.key IS NOT NULL THEN
    INSERT INTO storage_removals (tenant_id, key) VALUES (OLD.tenant_id, OLD.key);
  END IF;
  RETURN OLD;
END;
$$;

REVOKE ALL ON FUNCTION parley_upload_removed() FROM PUBLIC;

CREATE OR REPLACE TRIGGER uploads_removed
AFTER DELETE ON uploads
FOR EACH ROW EXECUTE FUNCTION parley_upload_removed();
