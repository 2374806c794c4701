import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { assertCursorRetained, decodeCursor, encodeCursor, type Cursor } from '../../realtime/cursor.ts';
import { currentSnapshot, readEvents, type StoredEvent } from '../events/events.repository.ts';

/** An event as sockets and /v1/sync carry it. */
export interface EventFrame {
  type: string;
  conversation_id: string;
  seq?: number;
  cursor: string;
  data: Record<string, unknown>;
  ts: string;
}

/** The frame of an event read in the window (prev, now], with the cursor to resume after it. */
export function toEventFrame(
  event: StoredEvent,
  window: { prev: string; now: string; at: number },
): EventFrame {
  return {
    type: event.type,
    conversation_id: event.conversationId,
    ...(event.seq === null ? {} : { seq: event.seq }),
    cursor: encodeCursor({ prev: window.prev, now: window.now, afterId: event.id, at: window.at }),
    data: event.data,
    ts: event.createdAt.toISOString(),
  };
}

/** A cursor at the present moment: everything committed so far is behind it. */
export async function presentCursor(orm: Orm): Promise<Cursor> {
  return { prev: await currentSnapshot(orm), at: Date.now() };
}

/** Replays what a user missed: every event after a cursor, oldest first, each exactly once. */
export function createSyncService({ orm, retentionDays }: { orm: Orm; retentionDays: number }) {
  return {
    async sync(ctx: TenantContext, query: { since?: string; limit?: number }) {
      const userId = actingUserId(ctx);
      const limit = query.limit ?? 100;
      if (query.since === undefined) {
        return { events: [], next_cursor: encodeCursor(await presentCursor(orm)), has_more: false };
      }
      const cursor = decodeCursor(query.since);
      assertCursorRetained(cursor, retentionDays);
      return inTenant(orm, ctx.tenantId, async (scope) => {
        // A window still being paged keeps its bound; otherwise the bound is the present.
        const now = cursor.now ?? (await currentSnapshot(scope.tx));
        const nowAt = cursor.now === undefined ? Date.now() : cursor.at;
        const window = { prev: cursor.prev, now, at: cursor.at };
        const rows = await readEvents(scope, {
          prev: cursor.prev,
          now,
          afterId: cursor.afterId ?? 0,
          limit: limit + 1,
          userId,
        });
        const events = rows.slice(0, limit).map((event) => toEventFrame(event, window));
        const hasMore = rows.length > limit;
        const last = events.at(-1);
        const next = hasMore && last ? last.cursor : encodeCursor({ prev: now, at: nowAt });
        return { events, next_cursor: next, has_more: hasMore };
      });
    },
  };
}

export type SyncService = ReturnType<typeof createSyncService>;
