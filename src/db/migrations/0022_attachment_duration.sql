-- Audio and video attachments keep their length (docs/ATTACHMENTS.md, "What Parley does with the bytes").
ALTER TABLE "attachments" ADD COLUMN "duration_ms" integer;
