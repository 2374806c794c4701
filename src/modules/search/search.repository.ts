import { sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import { arrayParam, isAnyOf } from '../../db/params.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

/** A search hit: the message id and its rank (a float4, carried exactly through cursors). */
export interface SearchHit {
  id: string;
  rank: number;
}

/** What to search for and where; every filter optional but the query. */
export interface SearchQuery {
  /** websearch_to_tsquery syntax: words, "phrases", -exclusions. */
  text: string;
  /** A LIKE pattern for substring search in scripts without spaces, or null. */
  substringPattern: string | null;
  conversationId?: string | undefined;
  senderId?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  /** Only messages with attachments (true), only those without (false), or both. */
  hasAttachments?: boolean | undefined;
  after: SearchHit | undefined;
  limit: number;
  /** The roles that may read a conversation (`rolesAllowedTo('read')`): only their conversations are searched. */
  readRoles: readonly string[];
}

/**
 * Full-text search over the messages of the conversations a user may read (a member with one of
 * `readRoles`), best match first: the
 * english text-search configuration (stemming) through the GIN index on (tenant_id, search_vector), plus,
 * for scripts written without spaces, a substring match through the trigram index. Deleted messages never
 * match (their text is gone), nor do messages of deleted conversations. The search runs in the
 * parley_search_messages function (SECURITY DEFINER), which may use those indexes where row-level security
 * would not let it, and filters by the transaction's tenant itself; it returns only ids and ranks, and the
 * caller reads the messages under row-level security.
 */
export async function searchMessages(
  scope: TenantScope,
  userId: string,
  query: SearchQuery,
): Promise<SearchHit[]> {
  const result = await scope.tx.execute(sql`
    SELECT id, rank FROM parley_search_messages(
      ${userId}::text, ${query.text}::text, ${query.substringPattern}::text,
      ${query.conversationId ?? null}::uuid, ${query.senderId ?? null}::text,
      ${query.since ?? null}::timestamptz, ${query.until ?? null}::timestamptz,
      ${query.after?.rank ?? null}::real, ${query.after?.id ?? null}::uuid, ${query.limit}::integer,
      ${arrayParam(query.readRoles, 'text')}, ${query.hasAttachments ?? null}::boolean)`);
  return rowsOf<{ id: string; rank: number | string }>(result).map((row) => ({
    id: row.id,
    rank: Number(row.rank),
  }));
}

/** Start and stop markers of ts_headline: private-use characters, stripped from the text beforehand. */
export const MARK_START = '\uE000';
export const MARK_STOP = '\uE001';
/**
 * ts_headline's parser drops what looks like an HTML tag (`<b>`), so `<` and `>` stand in as these for the
 * call and are put back after: the snippet keeps exactly what the user wrote.
 */
export const LESS_THAN = '\uE002';
export const GREATER_THAN = '\uE003';

/** ts_headline snippets of the given messages for the query, with matches between MARK_START and MARK_STOP. */
export async function headlines(
  scope: TenantScope,
  messageIds: string[],
  text: string,
): Promise<Map<string, string>> {
  if (messageIds.length === 0) return new Map();
  const privateUse = MARK_START + MARK_STOP + LESS_THAN + GREATER_THAN;
  const result = await scope.tx.execute(sql`
    SELECT id, ts_headline('english',
                           translate(translate(coalesce(text, ''), ${privateUse}, ''), '<>', ${LESS_THAN + GREATER_THAN}),
                           websearch_to_tsquery('english', ${text}),
                           ${`StartSel=${MARK_START}, StopSel=${MARK_STOP}, MaxWords=35, MinWords=15`}) AS headline
    FROM messages
    WHERE tenant_id = ${scope.tenantId} AND ${isAnyOf(sql`id`, messageIds, 'uuid')}`);
  return new Map(
    rowsOf<{ id: string; headline: string }>(result).map((row) => [
      row.id,
      row.headline.replaceAll(LESS_THAN, '<').replaceAll(GREATER_THAN, '>'),
    ]),
  );
}
