import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import { inTenantAsUser, type TenantScope } from '../../db/tenant-scope.ts';
import type { TenantContext } from '../../context.ts';
import { cursorInteger, cursorTimestamp, decodeCursor, toPage } from '../../http/pagination.ts';
import { assertAllowed, assertNotArchived, assertNotDeleted } from '../access/permissions.ts';
import { loadVisible, loadVisibleMessage } from '../access/visibility.ts';
import { loadMessageView, loadMessageViews } from '../messages/message-views.ts';
import { toEventData } from '../messages/messages.presenter.ts';
import type { EventLog } from '../events/event-log.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import { listPinned, updateMessage } from '../messages/messages.repository.ts';

/** Pins (ADMIN and above): pinning a pinned message or unpinning an unpinned one changes nothing. */
export function createPinsService({ orm, events, links }: { orm: Orm; events: EventLog; links: FileLinker }) {
  const run = <T>(ctx: TenantContext, work: (scope: TenantScope, userId: string) => Promise<T>) =>
    inTenantAsUser(orm, ctx, work);

  const setPinned = (ctx: TenantContext, messageId: string, isPinned: boolean) =>
    run(ctx, async (scope, userId) => {
      const { message, conversation, role } = await loadVisibleMessage(scope, messageId, userId, {
        forUpdate: true,
      });
      assertAllowed(role, 'read');
      assertAllowed(role, 'pin');
      assertNotDeleted(message);
      assertNotArchived(conversation);
      if ((message.pinnedAt !== null) === isPinned) return loadMessageView(scope, userId, message, links);
      const updated = await updateMessage(scope, messageId, {
        pinnedAt: isPinned ? sql`now()` : null,
        pinnedBy: isPinned ? userId : null,
      });
      const view = await loadMessageView(scope, userId, updated, links);
      await events.record(scope, updated.conversationId, [
        { type: 'message.updated', seq: updated.seq, data: toEventData(view) },
      ]);
      return view;
    });

  return {
    pinMessage: (ctx: TenantContext, messageId: string) => setPinned(ctx, messageId, true),
    unpinMessage: (ctx: TenantContext, messageId: string) => setPinned(ctx, messageId, false),

    /** Pinned messages of a conversation, most recently pinned first. */
    listPins(ctx: TenantContext, conversationId: string, query: { cursor?: string; limit?: number }) {
      return run(ctx, async (scope, userId) => {
        const { role } = await loadVisible(scope, conversationId, userId);
        assertAllowed(role, 'read');
        const limit = query.limit ?? 50;
        const key = query.cursor === undefined ? undefined : decodeCursor(query.cursor, 2);
        const rows = await listPinned(scope, conversationId, {
          after: key && { pinnedAt: cursorTimestamp(key[0]), seq: cursorInteger(key[1]) },
          limit: limit + 1,
        });
        const page = toPage(rows, limit, (row) => [row.pinnedAt?.toISOString() ?? '', String(row.seq)]);
        return { ...page, data: await loadMessageViews(scope, userId, page.data, links) };
      });
    },
  };
}

export type PinsService = ReturnType<typeof createPinsService>;
