import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { assertCursorRetained, decodeCursor, encodeCursor, type Cursor } from '../events/events.cursor.ts';
import { currentSnapshot, readEvents } from '../events/events.repository.ts';
import { toLoggedEvent } from '../events/event-envelope.ts';
import type { LoggedEvent, StoredEvent } from '../events/events.schemas.ts';

/** The frame of an event read in the window (prev, now], with the cursor to resume after it. */
export function toEventFrame(
  event: StoredEvent,
  window: { prev: string; now: string; at: number },
): LoggedEvent {
  return toLoggedEvent(
    event,
    encodeCursor({ prev: window.prev, now: window.now, afterId: event.id, at: window.at }),
  );
}

/** A cursor at the present moment: everything committed so far is behind it. */
async function presentCursor(orm: Orm): Promise<Cursor> {
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
        const events: LoggedEvent[] = [];
        let position: Cursor = cursor;
        // A cursor inside a window (an event's) finishes that window, then reads on to the present.
        for (;;) {
          const isFinishingWindow = position.now !== undefined;
          const now = position.now ?? (await currentSnapshot(scope.tx));
          // When `now` came with the cursor its time is unknown: keep the older one (expires no later).
          const nowAt = isFinishingWindow ? position.at : Date.now();
          const window = { prev: position.prev, now, at: position.at };
          const rows = await readEvents(scope, {
            prev: position.prev,
            now,
            afterId: position.afterId ?? 0,
            limit: limit - events.length + 1,
            userId,
          });
          const room = limit - events.length;
          events.push(...rows.slice(0, room).map((event) => toEventFrame(event, window)));
          if (rows.length > room) {
            const last = events.at(-1);
            return { events, next_cursor: last?.cursor ?? encodeCursor(position), has_more: true };
          }
          position = { prev: now, at: nowAt };
          if (!isFinishingWindow) return { events, next_cursor: encodeCursor(position), has_more: false };
        }
      });
    },
  };
}

export type SyncService = ReturnType<typeof createSyncService>;
