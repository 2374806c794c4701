CREATE TABLE "events" (
	"tenant_id" uuid NOT NULL,
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"tx" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"conversation_id" uuid NOT NULL,
	"type" text NOT NULL,
	"seq" bigint,
	"subject_user_id" text,
	"is_private" boolean DEFAULT false NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "events_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "events" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE INDEX "events_tx_idx" ON "events" USING btree ("tenant_id","tx");--> statement-breakpoint
CREATE INDEX "events_created_idx" ON "events" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "events" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid) WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);--> statement-breakpoint
-- Retention: events older than max_age (30 days by default, PARLEY_EVENT_RETENTION_DAYS) are deleted for
-- every tenant; a cursor from before that answers 410 cursor_expired. SECURITY DEFINER: see 0002.
CREATE OR REPLACE FUNCTION parley_purge_events(max_age interval)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
  WITH purged AS (DELETE FROM events WHERE created_at < now() - max_age RETURNING 1)
  SELECT count(*) FROM purged
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION parley_purge_events(interval) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION parley_purge_events(interval) TO parley_app;
