import { and, asc, eq, gt, sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import { conversationMembers } from '../../db/schema/conversations.ts';
import { isAnyOf } from '../../db/params.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

/** Moves a member's read watermark forward to `seq` (never back); returns the watermark now. */
export async function advanceReadWatermark(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  seq: number,
): Promise<number | undefined> {
  const [row] = await scope.tx
    .update(conversationMembers)
    .set({ lastReadSeq: sql`greatest(${conversationMembers.lastReadSeq}, ${seq})` })
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
 * watermark (and, of those, the ones mentioning the member). Direct and group conversations read the
 * member's counters, which triggers keep (migration 0012); channels, whose members have no counters, count
 * with parley_unread_scan (an index range scan from the watermark), and only when something follows it.
 */
export async function countUnread(
  scope: TenantScope,
  userId: string,
  conversationIds?: string[],
): Promise<UnreadRow[]> {
  if (conversationIds?.length === 0) return [];
  const only =
    conversationIds === undefined
      ? sql``
      : sql`AND ${isAnyOf(sql`m.conversation_id`, conversationIds, 'uuid')}`;
  const result = await scope.tx.execute(sql`
    SELECT m.conversation_id AS "conversationId", m.last_read_seq AS "lastReadSeq",
           CASE WHEN c.type = 'channel' THEN coalesce(u.unread, 0) ELSE m.unread_count END AS "unreadCount",
           CASE WHEN c.type = 'channel' THEN coalesce(u.mentions, 0) ELSE m.mention_count END AS "mentionCount"
    FROM conversation_members m
    JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id AND c.deleted_at IS NULL
    LEFT JOIN LATERAL (
      SELECT scan.unread, scan.mentions
      FROM parley_unread_scan(m.tenant_id, m.conversation_id, m.user_id, m.last_read_seq) scan
      WHERE c.type = 'channel' AND c.last_main_seq > m.last_read_seq
    ) u ON true
    WHERE m.tenant_id = ${scope.tenantId} AND m.user_id = ${userId} ${only}`);
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
