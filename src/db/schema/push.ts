import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  foreignKey,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { users } from './users.ts';
import { tenantIsolation } from './rls.ts';
import { timestamptz } from './columns.ts';

/**
 * A browser's Web Push subscription (RFC 8030, keys of RFC 8291) for one user: where the push service
 * takes messages for it, and the keys its messages are encrypted to. One endpoint belongs to one user.
 */
export const pushSubscriptions = pgTable(
  'push_subscriptions',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    userId: text('user_id').notNull(),
    endpoint: text('endpoint').notNull(),
    /** The subscriber's P-256 public key, base64url (as the browser gives it). */
    p256dh: text('p256dh').notNull(),
    /** The subscriber's 16-byte authentication secret, base64url. */
    auth: text('auth').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex('push_subscriptions_endpoint_idx').on(t.tenantId, t.endpoint),
    index('push_subscriptions_user_idx').on(t.tenantId, t.userId),
    foreignKey({
      name: 'push_subscriptions_user_fk',
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);

/**
 * One push to send to one subscription: a `message.created` event of the log that the push consumer
 * decided the subscriber should hear about. The content is read from the event when it is sent, so a
 * message deleted meanwhile is not previewed. Only the newest pending push of a subscription and a
 * conversation is kept (older ones are deleted when it is made): they would collapse anyway (Topic).
 */
export const pushDeliveries = pgTable(
  'push_deliveries',
  {
    tenantId: uuid('tenant_id').notNull(),
    id: uuid('id').notNull(),
    subscriptionId: uuid('subscription_id').notNull(),
    conversationId: uuid('conversation_id').notNull(),
    /** The `message.created` event it tells of. */
    eventId: bigint('event_id', { mode: 'number' }).notNull(),
    /** `pending` (to send, maybe after a failure) or `failed` (gave up); sent ones are deleted. */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** When it may be sent next; a claim moves it a lease ahead. Null once failed. */
    nextAttemptAt: timestamptz('next_attempt_at'),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    foreignKey({
      name: 'push_deliveries_subscription_fk',
      columns: [t.tenantId, t.subscriptionId],
      foreignColumns: [pushSubscriptions.tenantId, pushSubscriptions.id],
    }).onDelete('cascade'),
    // What the sender claims: due pending pushes, oldest due first.
    index('push_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    // Coalescing: the pending pushes of a subscription and a conversation.
    index('push_deliveries_pending_idx')
      .on(t.tenantId, t.subscriptionId, t.conversationId)
      .where(sql`${t.status} = 'pending'`),
    // Retention of failed ones, by age.
    index('push_deliveries_failed_idx')
      .on(t.createdAt)
      .where(sql`${t.status} = 'failed'`),
    check('push_deliveries_status_check', sql`${t.status} IN ('pending', 'failed')`),
    tenantIsolation(),
  ],
);
