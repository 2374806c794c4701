-- Uploads under way that are not attachments yet (docs/ATTACHMENTS.md, "Resumable and direct uploads"):
-- tus uploads at /v1/uploads and presigned PUTs to S3. The row's deletion before it finished queues the
-- removal of what it stored (the trigger of parley_upload_removed); expired rows are purged by
-- parley_purge_expired_uploads. Under row-level security like every tenant table.
CREATE TABLE "uploads" (
	"tenant_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"uploader_id" text NOT NULL,
	"method" text NOT NULL,
	"name" text NOT NULL,
	"length" bigint NOT NULL,
	"key" text,
	"expires_at" timestamp (3) with time zone NOT NULL,
	"finished_at" timestamp (3) with time zone,
	"lock_holder" text,
	"lock_expires_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uploads_tenant_id_id_pk" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "uploads_method_check" CHECK ("uploads"."method" IN ('tus', 'presigned')),
	CONSTRAINT "uploads_length_check" CHECK ("uploads"."length" > 0)
);
--> statement-breakpoint
ALTER TABLE "uploads" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_uploader_fk" FOREIGN KEY ("tenant_id","uploader_id") REFERENCES "public"."users"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "uploads_expires_idx" ON "uploads" USING btree ("expires_at");--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "uploads" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));