import type { Orm } from '../../db/client.ts';
import { inTenantAsUser, tenantDb, type TenantScope } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { notFound } from '../../errors.ts';
import { cursorText, decodeCursor, toPage } from '../../http/pagination.ts';
import { assertAllowed } from '../access/permissions.ts';
import { loadVisible, loadVisibleMessage } from '../access/visibility.ts';
import { advanceReadWatermark, countUnread, listReaders, readUnreadSummary } from './reads.repository.ts';
import type { EventLog } from '../events/event-log.ts';

/** Read state: a watermark per member (last_read_seq), moved only forward; unread counts derive from it. */
export function createReadsService({ orm, events }: { orm: Orm; events: EventLog }) {
  const run = <T>(ctx: TenantContext, work: (scope: TenantScope, userId: string) => Promise<T>) =>
    inTenantAsUser(orm, ctx, work);

  return {
    /** Moves the caller's watermark to `seq` (default: the latest message), never back, never past the end. */
    markRead(ctx: TenantContext, conversationId: string, input: { seq?: number }) {
      return run(ctx, async (scope, userId) => {
        // The conversation lock first, like every event-writing transaction.
        const { conversation, member } = await loadVisible(scope, conversationId, userId, {
          forUpdate: true,
        });
        if (member === null) throw notFound('membership');
        const target = Math.min(input.seq ?? conversation.lastMessageSeq, conversation.lastMessageSeq);
        const lastReadSeq = await advanceReadWatermark(scope, conversationId, userId, target);
        if (lastReadSeq !== undefined && lastReadSeq > member.lastReadSeq) {
          await events.record(scope, conversationId, [
            {
              type: 'read.updated',
              subjectUserId: userId,
              isPrivate: true,
              data: { user_id: userId, last_read_seq: lastReadSeq },
            },
          ]);
        }
        const [counts] = await countUnread(scope, userId, [conversationId]);
        return {
          conversation_id: conversationId,
          last_read_seq: counts?.lastReadSeq ?? target,
          unread_count: counts?.unreadCount ?? 0,
          mention_count: counts?.mentionCount ?? 0,
        };
      });
    },

    /** Totals and the conversations with something unread, most unread first, as the response's JSON. */
    getUnread(ctx: TenantContext) {
      return readUnreadSummary(tenantDb(orm, ctx), actingUserId(ctx));
    },

    /** Members whose watermark has reached a message, by user id. */
    listReceipts(ctx: TenantContext, messageId: string, query: { cursor?: string; limit?: number }) {
      return run(ctx, async (scope, userId) => {
        const { message, role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        const limit = query.limit ?? 50;
        const afterUserId =
          query.cursor === undefined ? undefined : cursorText(decodeCursor(query.cursor, 1)[0]);
        const rows = await listReaders(scope, message.conversationId, message.seq, {
          afterUserId,
          limit: limit + 1,
        });
        const page = toPage(rows, limit, (row) => [row.userId]);
        return {
          ...page,
          data: page.data.map((row) => ({ user_id: row.userId, last_read_seq: row.lastReadSeq })),
        };
      });
    },
  };
}

export type ReadsService = ReturnType<typeof createReadsService>;
