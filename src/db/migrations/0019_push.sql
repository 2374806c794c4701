-- Web Push to offline users (docs/PUSH.md): browsers' subscriptions (push_subscriptions, one endpoint per
-- tenant, removed with their user) and the pushes the `push` consumer of the event log decides to send
-- (push_deliveries, sent ones deleted); the tenant setting that turns previews off (tenants.push_previews);
-- and webhook deliveries of source `notification` (notification.requested), which carry both the decision
-- (payload) and the message event their preview is read from. Tenant tables are under row-level security;
-- the cross-tenant claim and purge are SECURITY DEFINER functions (parley_claim_push_deliveries,
-- parley_purge_push_deliveries) that return ids and counts only.
CREATE TABLE "push_deliveries" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"subscription_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"event_id" bigint NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone,
	"last_status_code" integer,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "push_deliveries_tenant_id_id_pk" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "push_deliveries_status_check" CHECK ("push_deliveries"."status" IN ('pending', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "push_deliveries" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "push_subscriptions" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"endpoint" text NOT NULL,
	"p256dh" text NOT NULL,
	"auth" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "push_subscriptions_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "push_subscriptions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" DROP CONSTRAINT "webhook_deliveries_source_check";--> statement-breakpoint
ALTER TABLE "webhook_deliveries" DROP CONSTRAINT "webhook_deliveries_content_check";--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "push_previews" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "push_deliveries" ADD CONSTRAINT "push_deliveries_subscription_fk" FOREIGN KEY ("tenant_id","subscription_id") REFERENCES "public"."push_subscriptions"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "push_subscriptions" ADD CONSTRAINT "push_subscriptions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "push_subscriptions" ADD CONSTRAINT "push_subscriptions_user_fk" FOREIGN KEY ("tenant_id","user_id") REFERENCES "public"."users"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "push_deliveries_due_idx" ON "push_deliveries" USING btree ("next_attempt_at") WHERE "push_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "push_deliveries_pending_idx" ON "push_deliveries" USING btree ("tenant_id","subscription_id","conversation_id") WHERE "push_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "push_deliveries_failed_idx" ON "push_deliveries" USING btree ("created_at") WHERE "push_deliveries"."status" = 'failed';--> statement-breakpoint
CREATE UNIQUE INDEX "push_subscriptions_endpoint_idx" ON "push_subscriptions" USING btree ("tenant_id","endpoint");--> statement-breakpoint
CREATE INDEX "push_subscriptions_user_idx" ON "push_subscriptions" USING btree ("tenant_id","user_id");--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_source_check" CHECK ("webhook_deliveries"."source" IN ('event', 'replay', 'test', 'notice', 'notification'));--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_content_check" CHECK (CASE WHEN "webhook_deliveries"."source" = 'notification' THEN "webhook_deliveries"."event_id" IS NOT NULL AND "webhook_deliveries"."payload" IS NOT NULL ELSE ("webhook_deliveries"."event_id" IS NULL) = ("webhook_deliveries"."payload" IS NOT NULL) END);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "push_deliveries" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "push_subscriptions" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
-- Endpoints created before this migration with "*" receive notification.requested from now on: the push
-- consumer follows their tenants, from the present, as creating such an endpoint now would make it.
INSERT INTO "event_consumers" ("tenant_id", "consumer", "prev")
SELECT DISTINCT "tenant_id", 'push', pg_current_snapshot()::text FROM "webhook_endpoints" WHERE '*' = ANY ("events")
ON CONFLICT DO NOTHING;
