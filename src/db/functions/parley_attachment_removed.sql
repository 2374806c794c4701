-- An attachment row deleted, however it happens (its uploader before sending it, its message deleted, the
-- day-old upload never sent, its uploader erased, its conversation or tenant deleted): every object it keeps
-- in storage is queued for removal, and its bytes are given back to the tenant's quota, in the deleting
-- transaction (docs/ATTACHMENTS.md, "Life cycle"). SECURITY DEFINER: cascades of a tenant's deletion run
-- without a tenant bound to the transaction, and the queue is written whatever the caller's row-level
-- scope; it writes only rows of the deleted attachment's own tenant.
CREATE OR REPLACE FUNCTION parley_attachment_removed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO storage_removals (tenant_id, key)
  SELECT OLD.tenant_id, keys.key
  FROM (
    SELECT OLD.upload_key AS key
    UNION
    SELECT r ->> 'key' FROM jsonb_array_elements(OLD.renditions) AS r
  ) keys
  WHERE keys.key IS NOT NULL;
  -- No row when the tenant itself is being deleted: nothing to give back to.
  UPDATE tenants SET storage_bytes = storage_bytes - OLD.stored_bytes
  WHERE id = OLD.tenant_id;
  RETURN OLD;
END;
$$;

REVOKE ALL ON FUNCTION parley_attachment_removed() FROM PUBLIC;

CREATE OR REPLACE TRIGGER attachments_removed
AFTER DELETE ON attachments
FOR EACH ROW EXECUTE FUNCTION parley_attachment_removed();
