-- Background work that follows the event log (docs/BACKGROUND.md): each consumer's position per tenant
-- (event_consumers), and webhooks: the endpoints of tenant backends, the deliveries of events to them, and
-- the lanes (an endpoint and a conversation) whose deliveries go one at a time, in order. Every table is
-- tenant-scoped under row-level security; the cross-tenant scheduling is in SECURITY DEFINER functions
-- (parley_claim_webhook_lanes, parley_event_consumer_tenants) that return ids only.
CREATE TABLE "event_consumers" (
	"tenant_id" uuid NOT NULL,
	"consumer" text NOT NULL,
	"prev" text NOT NULL,
	"now" text,
	"after_id" bigint,
	"prev_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "event_consumers_tenant_id_consumer_pk" PRIMARY KEY("tenant_id","consumer"),
	CONSTRAINT "event_consumers_window_check" CHECK (("event_consumers"."now" IS NULL) = ("event_consumers"."after_id" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "event_consumers" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"endpoint_id" uuid NOT NULL,
	"lane" uuid NOT NULL,
	"source" text NOT NULL,
	"type" text NOT NULL,
	"event_id" bigint,
	"cursor" text,
	"payload" jsonb,
	"message_id" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone,
	"last_attempt_at" timestamp (3) with time zone,
	"last_status_code" integer,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_deliveries_tenant_id_id_pk" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "webhook_deliveries_status_check" CHECK ("webhook_deliveries"."status" IN ('pending', 'delivered', 'failed')),
	CONSTRAINT "webhook_deliveries_source_check" CHECK ("webhook_deliveries"."source" IN ('event', 'replay', 'test', 'notice')),
	CONSTRAINT "webhook_deliveries_content_check" CHECK (("webhook_deliveries"."event_id" IS NULL) = ("webhook_deliveries"."payload" IS NOT NULL))
);
--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_endpoints" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"url" text NOT NULL,
	"events" text[] NOT NULL,
	"description" text,
	"secrets" jsonb NOT NULL,
	"disabled_at" timestamp (3) with time zone,
	"disabled_reason" text,
	"failing_since" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_endpoints_tenant_id_id_pk" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "webhook_endpoints_disabled_check" CHECK (("webhook_endpoints"."disabled_at" IS NULL) = ("webhook_endpoints"."disabled_reason" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_lanes" (
	"tenant_id" uuid NOT NULL,
	"endpoint_id" uuid NOT NULL,
	"lane" uuid NOT NULL,
	"next_attempt_at" timestamp (3) with time zone,
	CONSTRAINT "webhook_lanes_tenant_id_endpoint_id_lane_pk" PRIMARY KEY("tenant_id","endpoint_id","lane")
);
--> statement-breakpoint
ALTER TABLE "webhook_lanes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "event_consumers" ADD CONSTRAINT "event_consumers_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_fk" FOREIGN KEY ("tenant_id","endpoint_id") REFERENCES "public"."webhook_endpoints"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_lanes" ADD CONSTRAINT "webhook_lanes_endpoint_fk" FOREIGN KEY ("tenant_id","endpoint_id") REFERENCES "public"."webhook_endpoints"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_event_idx" ON "webhook_deliveries" USING btree ("tenant_id","endpoint_id","event_id") WHERE "webhook_deliveries"."source" = 'event';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_lane_idx" ON "webhook_deliveries" USING btree ("tenant_id","endpoint_id","lane","event_id","id") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_open_idx" ON "webhook_deliveries" USING btree ("status","created_at") WHERE "webhook_deliveries"."status" <> 'delivered';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_list_idx" ON "webhook_deliveries" USING btree ("tenant_id","endpoint_id","id");--> statement-breakpoint
CREATE INDEX "webhook_lanes_due_idx" ON "webhook_lanes" USING btree ("next_attempt_at") WHERE "webhook_lanes"."next_attempt_at" IS NOT NULL;--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "event_consumers" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "webhook_deliveries" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "webhook_endpoints" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "webhook_lanes" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));