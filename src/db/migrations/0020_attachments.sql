-- Attachments (docs/ATTACHMENTS.md): the files users upload (attachments; pending until background work
-- has processed them, bound to a message by a send), what each message keeps of its attachments
-- (messages.attachments), stored bytes waiting to be removed (storage_removals, queued by the deletion of
-- an attachment row in its own transaction, by the trigger of parley_attachment_removed), uploads'
-- reservations of quota (storage_reservations), and each tenant's quota and usage (tenants.storage_*).
-- Tenant tables are under row-level security; the cross-tenant claims are SECURITY DEFINER functions.
CREATE TABLE "attachments" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"uploader_id" text NOT NULL,
	"conversation_id" uuid,
	"message_id" uuid,
	"name" text NOT NULL,
	"content_type" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"width" integer,
	"height" integer,
	"status" text DEFAULT 'pending' NOT NULL,
	"rejected_reason" text,
	"upload_key" text,
	"renditions" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"stored_bytes" bigint NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"bound_at" timestamp (3) with time zone,
	CONSTRAINT "attachments_tenant_id_id_pk" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "attachments_status_check" CHECK ("attachments"."status" IN ('pending', 'ready', 'rejected')),
	CONSTRAINT "attachments_bound_check" CHECK (("attachments"."message_id" IS NULL) = ("attachments"."conversation_id" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "attachments" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "storage_removals" (
	"tenant_id" uuid NOT NULL,
	"id" bigserial NOT NULL,
	"key" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "storage_removals_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "storage_removals" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "storage_reservations" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"bytes" bigint NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "storage_reservations_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "storage_reservations" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "storage_quota_bytes" bigint;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "storage_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "attachments" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_uploader_fk" FOREIGN KEY ("tenant_id","uploader_id") REFERENCES "public"."users"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_conversation_fk" FOREIGN KEY ("tenant_id","conversation_id") REFERENCES "public"."conversations"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "storage_reservations" ADD CONSTRAINT "storage_reservations_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "attachments_message_idx" ON "attachments" USING btree ("tenant_id","message_id") WHERE "attachments"."message_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "attachments_due_idx" ON "attachments" USING btree ("next_attempt_at") WHERE "attachments"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "attachments_unbound_idx" ON "attachments" USING btree ("created_at") WHERE "attachments"."message_id" IS NULL;--> statement-breakpoint
CREATE INDEX "storage_removals_due_idx" ON "storage_removals" USING btree ("next_attempt_at");--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "attachments" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "storage_removals" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "storage_reservations" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));