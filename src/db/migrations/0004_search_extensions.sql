-- Message search: pg_trgm finds substrings in scripts written without spaces (Chinese, Japanese), and
-- btree_gin lets tenant_id lead the GIN indexes like every other index. Both are trusted extensions: the
-- database owner may create them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS btree_gin;
