import { and, asc, eq, gt, sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import type { JsonText } from '../../db/json-rows.ts';
import type { UnreadSummary } from './reads.schemas.ts';
import { conversationMembers } from '../../db/schema/conversations.ts';
import { arrayParam } from '../../db/params.ts';
import type { TenantDb, TenantScope } from '../../db/tenant-scope.ts';

/**
 * Moves a member's read watermark to `seq` by the database's rule (`parley_moved_watermark`: never back);
 * returns the watermark now.
 */
export async function advanceReadWatermark(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  seq: number,
): Promise<number | undefined> {
  const [row] = await scope.tx
    .update(conversationMembers)
    .set({ lastReadSeq: sql`parley_moved_watermark(${conversationMembers.lastReadSeq}, ${seq}::bigint)` })
    .where(
      and(
        eq(conversationMembers.tenantId, scope.tenantId),
        eq(conversationMembers.conversationId, conversationId),
        eq(conversationMembers.userId, userId),
      ),
    )
    .returning({ lastReadSeq: conversationMembers.lastReadSeq });
  return row?.lastReadSeq;
}

/** Unread and mention counts of one member's conversations. */
export interface UnreadRow {
  conversationId: string;
  lastReadSeq: number;
  unreadCount: number;
  mentionCount: number;
}

/**
 * Exact unread counts by the contract's rule: other people's non-deleted main-timeline messages after the
 * watermark (and, of those, the ones mentioning the member), in one statement, the parley_unread_counts
 * function (src/db/functions): direct and group conversations read the member's counters, which triggers
 * keep; channels count with a range scan from the watermark, and only when something follows it. It sets
 * the tenant itself, so it runs on its own (a `TenantDb`: one round trip) or in a transaction (a scope).
 */
export async function countUnread(
  tenant: TenantDb,
  userId: string,
  conversationIds?: string[],
): Promise<UnreadRow[]> {
  if (conversationIds?.length === 0) return [];
  const ids = conversationIds === undefined ? sql`NULL::uuid[]` : arrayParam(conversationIds, 'uuid');
  const result = await tenant.db.execute(sql`
    SELECT conversation_id AS "conversationId", last_read_seq AS "lastReadSeq",
           unread_count AS "unreadCount", mention_count AS "mentionCount"
    FROM parley_unread_counts(${tenant.tenantId}::uuid, ${userId}::text, ${ids})`);
  return rowsOf<Omit<UnreadRow, 'lastReadSeq'> & { lastReadSeq: string | number }>(result).map((row) => ({
    ...row,
    lastReadSeq: Number(row.lastReadSeq),
  }));
}

/** Members whose watermark has reached `seq`, by user id, after `afterUserId`. */
export function listReaders(
  scope: TenantScope,
  conversationId: string,
  seq: number,
  page: { afterUserId: string | undefined; limit: number },
) {
  return scope.tx
    .select({ userId: conversationMembers.userId, lastReadSeq: conversationMembers.lastReadSeq })
    .from(conversationMembers)
    .where(
      and(
        eq(conversationMembers.tenantId, scope.tenantId),
        eq(conversationMembers.conversationId, conversationId),
        sql`${conversationMembers.lastReadSeq} >= ${seq}`,
        page.afterUserId === undefined ? undefined : gt(conversationMembers.userId, page.afterUserId),
      ),
    )
    .orderBy(asc(conversationMembers.userId))
    .limit(page.limit);
}

/**
 * A member's unread summary (the counts of `countUnread`, without the conversations where nothing is
 * unread), as the JSON text of the response. Built in the database because a user in 1,000 conversations
 * gets 1,000 entries: parsing them into rows and serializing them again took most of the server's time for
 * the request (docs/PERFORMANCE.md). Ties in the order go by conversation id.
 */
export async function readUnreadSummary(tenant: TenantDb, userId: string): Promise<JsonText<UnreadSummary>> {
  // Concatenated rather than json_build_object per entry, which took about twice as long over 1,000 entries;
  // nothing here needs escaping (uuids, integers and fixed keys).
  const result = await tenant.db.execute(sql`
    SELECT '{"total_unread":' || coalesce(sum(u.unread_count), 0)
        || ',"total_mentions":' || coalesce(sum(u.mention_count), 0)
        || ',"conversations":[' || coalesce(string_agg(
             '{"conversation_id":"' || u.conversation_id
             || '","unread_count":' || u.unread_count
             || ',"mention_count":' || u.mention_count
             || ',"last_read_seq":' || u.last_read_seq || '}',
             ',' ORDER BY u.unread_count DESC, u.conversation_id), '')
        || ']}' AS body
    FROM parley_unread_counts(${tenant.tenantId}::uuid, ${userId}::text, NULL::uuid[]) u
    WHERE u.unread_count > 0 OR u.mention_count > 0`);
  const [row] = rowsOf<{ body: string }>(result);
  if (!row) throw new Error('the unread summary returned no row');
  return row.body;
}
