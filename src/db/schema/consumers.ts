import { sql } from 'drizzle-orm';
import { bigint, check, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { tenantIsolation } from './rls.ts';
import { timestamptz } from './columns.ts';

/**
 * A consumer's position in one tenant's event log: background work that follows the log (webhooks, push)
 * reads it like a feed does (docs/BACKGROUND.md), so the work a write causes is recorded by the events the
 * write's own transaction logged, at no cost to the write. `prev` is the snapshot everything before the
 * position was read under; while a window is read in pages, `now` bounds it and `after_id` is the last
 * event id taken from it. Locked by the one process advancing it (FOR UPDATE SKIP LOCKED).
 */
export const eventConsumers = pgTable(
  'event_consumers',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    consumer: text('consumer').notNull(),
    prev: text('prev').notNull(),
    now: text('now'),
    afterId: bigint('after_id', { mode: 'number' }),
    /** When `prev` was taken: how far behind the consumer is (a metric), and whether retention outran it. */
    prevAt: timestamptz('prev_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.consumer] }),
    check('event_consumers_window_check', sql`(${t.now} IS NULL) = (${t.afterId} IS NULL)`),
    tenantIsolation(),
  ],
);
