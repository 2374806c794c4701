import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  index,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { tenantIsolation } from './rls.ts';

const xid8 = customType<{ data: string }>({ dataType: () => 'xid8' });

/**
 * The event log: every change a member may see, written in the transaction that makes the change. A
 * reader's position is a database snapshot: the events after it are those whose transaction the next
 * snapshot sees and the previous one did not, so an event that commits late is never skipped and every
 * event is read exactly once (see docs/REALTIME.md). `data` is the event's payload as clients receive it;
 * for end-to-end encrypted conversations it will carry ciphertext, never plaintext the server must read.
 */
export const events = pgTable(
  'events',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** Drawn while the conversation's row lock is held, so per conversation it follows commit order. */
    id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity(),
    /** The writing transaction, for snapshot visibility. */
    tx: xid8('tx')
      .notNull()
      .default(sql`pg_current_xact_id()`),
    conversationId: uuid('conversation_id').notNull(),
    type: text('type').notNull(),
    /** The message seq, for message events. */
    seq: bigint('seq', { mode: 'number' }),
    /** The user the event is about (member changes, read state): that user receives it, member or not. */
    subjectUserId: text('subject_user_id'),
    /** Only the subject receives it (their own read state); otherwise every member does too. */
    isPrivate: boolean('is_private').notNull().default(false),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index('events_tx_idx').on(t.tenantId, t.tx),
    index('events_created_idx').on(t.tenantId, t.createdAt),
    index('events_message_idx')
      .on(t.tenantId, t.conversationId, t.seq)
      .where(sql`${t.seq} IS NOT NULL`),
    tenantIsolation(),
  ],
);
