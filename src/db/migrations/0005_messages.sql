CREATE TABLE "message_edits" (
	"tenant_id" uuid NOT NULL,
	"message_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"text" text NOT NULL,
	"written_at" timestamp (3) with time zone NOT NULL,
	"replaced_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "message_edits_tenant_id_message_id_version_pk" PRIMARY KEY("tenant_id","message_id","version")
);
--> statement-breakpoint
ALTER TABLE "message_edits" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "message_reactions" (
	"tenant_id" uuid NOT NULL,
	"message_id" uuid NOT NULL,
	"emoji" text NOT NULL,
	"user_id" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "message_reactions_tenant_id_message_id_emoji_user_id_pk" PRIMARY KEY("tenant_id","message_id","emoji","user_id")
);
--> statement-breakpoint
ALTER TABLE "message_reactions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "messages" (
	"tenant_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"id" uuid NOT NULL,
	"sender_id" text NOT NULL,
	"text" text,
	"mentions" text[] DEFAULT '{}'::text[] NOT NULL,
	"thread_root_id" uuid,
	"reply_count" integer DEFAULT 0 NOT NULL,
	"last_reply_at" timestamp (3) with time zone,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"client_msg_id" text,
	"pinned_at" timestamp (3) with time zone,
	"pinned_by" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"edited_at" timestamp (3) with time zone,
	"deleted_at" timestamp (3) with time zone,
	"search_vector" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED,
	CONSTRAINT "messages_tenant_id_conversation_id_seq_pk" PRIMARY KEY("tenant_id","conversation_id","seq")
);
--> statement-breakpoint
ALTER TABLE "messages" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "first_main_seq" bigint;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "last_main_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Before the foreign keys that reference it (drizzle-kit orders them after).
CREATE UNIQUE INDEX "messages_id_idx" ON "messages" USING btree ("tenant_id","id");
--> statement-breakpoint
ALTER TABLE "message_edits" ADD CONSTRAINT "message_edits_message_fk" FOREIGN KEY ("tenant_id","message_id") REFERENCES "public"."messages"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_reactions" ADD CONSTRAINT "message_reactions_message_fk" FOREIGN KEY ("tenant_id","message_id") REFERENCES "public"."messages"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_reactions" ADD CONSTRAINT "message_reactions_user_fk" FOREIGN KEY ("tenant_id","user_id") REFERENCES "public"."users"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_conversation_fk" FOREIGN KEY ("tenant_id","conversation_id") REFERENCES "public"."conversations"("tenant_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "message_reactions_user_idx" ON "message_reactions" USING btree ("tenant_id","user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "messages_client_msg_id_idx" ON "messages" USING btree ("tenant_id","sender_id","client_msg_id") WHERE "messages"."client_msg_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_main_timeline_idx" ON "messages" USING btree ("tenant_id","conversation_id","seq") WHERE "messages"."thread_root_id" IS NULL;--> statement-breakpoint
CREATE INDEX "messages_thread_idx" ON "messages" USING btree ("tenant_id","thread_root_id","seq") WHERE "messages"."thread_root_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_pinned_idx" ON "messages" USING btree ("tenant_id","conversation_id","pinned_at") WHERE "messages"."pinned_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_sender_idx" ON "messages" USING btree ("tenant_id","sender_id");--> statement-breakpoint
CREATE INDEX "messages_search_idx" ON "messages" USING gin ("tenant_id","search_vector");--> statement-breakpoint
CREATE INDEX "messages_text_trigram_idx" ON "messages" USING gin ("tenant_id","text" gin_trgm_ops);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_edits" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid) WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_reactions" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid) WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "messages" AS PERMISSIVE FOR ALL TO "parley_app" USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid) WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);