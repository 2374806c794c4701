import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { tenantIsolation } from './rls.ts';
import { timestamptz } from './columns.ts';

/** An endpoint of a tenant's backend that receives events (Standard Webhooks). */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    url: text('url').notNull(),
    /** Event types it receives; `*` for all. */
    events: text('events').array().notNull(),
    description: text('description'),
    /**
     * Its signing secrets, sealed with the server key (they must be read back to sign): the current one
     * first; a rotated-out one keeps signing until `expires_at`.
     */
    secrets: jsonb('secrets').$type<{ sealed: string; expires_at: string | null }[]>().notNull(),
    disabledAt: timestamptz('disabled_at'),
    /** `manual` (PATCH) or `failing` (failed continuously for five days). */
    disabledReason: text('disabled_reason'),
    /** Since when every attempt has failed; cleared by a success. */
    failingSince: timestamptz('failing_since'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    check('webhook_endpoints_disabled_check', sql`(${t.disabledAt} IS NULL) = (${t.disabledReason} IS NULL)`),
    tenantIsolation(),
  ],
);

/**
 * One event (or a test, or a notice) to send to one endpoint, and what became of it. Deliveries of one
 * lane (an endpoint and a conversation) are sent one at a time, in event order, retries included.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    tenantId: uuid('tenant_id').notNull(),
    id: uuid('id').notNull(),
    endpointId: uuid('endpoint_id').notNull(),
    /** The conversation of its event; for deliveries of no conversation, the delivery's own id. */
    lane: uuid('lane').notNull(),
    /**
     * `event` (from the log), `replay`, `test`, `notice` (webhook.disabled) or `notification`
     * (notification.requested: the push decision in `payload`, about the message event `event_id`).
     */
    source: text('source').notNull(),
    type: text('type').notNull(),
    /**
     * The logged event it carries; null for a test or a notice, which carry `payload` instead. A
     * notification has both: the event's text is read when it is sent (a deleted message is not previewed).
     */
    eventId: bigint('event_id', { mode: 'number' }),
    /** The cursor a socket would resume from after the event (its `cursor` field), from the window read. */
    cursor: text('cursor'),
    payload: jsonb('payload').$type<Record<string, unknown>>(),
    /** `webhook-id`: the same on every attempt, retry and replay of one event to one endpoint. */
    messageId: text('message_id').notNull(),
    /** `pending` (to send, maybe after a failure), `delivered`, `failed` (the schedule ran out). */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at'),
    lastAttemptAt: timestamptz('last_attempt_at'),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    foreignKey({
      name: 'webhook_deliveries_endpoint_fk',
      columns: [t.tenantId, t.endpointId],
      foreignColumns: [webhookEndpoints.tenantId, webhookEndpoints.id],
    }).onDelete('cascade'),
    // The log's events reach each endpoint once (replays are rows of their own).
    uniqueIndex('webhook_deliveries_event_idx')
      .on(t.tenantId, t.endpointId, t.eventId)
      .where(sql`${t.source} = 'event'`),
    // A lane's head: its oldest pending delivery.
    index('webhook_deliveries_lane_idx')
      .on(t.tenantId, t.endpointId, t.lane, t.eventId, t.id)
      .where(sql`${t.status} = 'pending'`),
    // What is waiting or failed, by age: for the metrics and `parley jobs`.
    index('webhook_deliveries_open_idx')
      .on(t.status, t.createdAt)
      .where(sql`${t.status} <> 'delivered'`),
    // The deliveries list, newest first, optionally by status.
    index('webhook_deliveries_list_idx').on(t.tenantId, t.endpointId, t.id),
    check('webhook_deliveries_status_check', sql`${t.status} IN ('pending', 'delivered', 'failed')`),
    check(
      'webhook_deliveries_source_check',
      sql`${t.source} IN ('event', 'replay', 'test', 'notice', 'notification')`,
    ),
    check(
      'webhook_deliveries_content_check',
      // A notification has both: the decision (payload) and the message event its preview is read from.
      sql`CASE WHEN ${t.source} = 'notification' THEN ${t.eventId} IS NOT NULL AND ${t.payload} IS NOT NULL ELSE (${t.eventId} IS NULL) = (${t.payload} IS NOT NULL) END`,
    ),
    tenantIsolation(),
  ],
);

/**
 * The schedule of each lane with pending deliveries: when its head may be sent next. Claiming a lane
 * (FOR UPDATE SKIP LOCKED) moves `next_attempt_at` past a lease, so one process at a time sends a lane's
 * head, and a process that dies mid-send only delays it by the lease. Null when idle.
 */
export const webhookLanes = pgTable(
  'webhook_lanes',
  {
    tenantId: uuid('tenant_id').notNull(),
    endpointId: uuid('endpoint_id').notNull(),
    lane: uuid('lane').notNull(),
    nextAttemptAt: timestamptz('next_attempt_at'),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.endpointId, t.lane] }),
    foreignKey({
      name: 'webhook_lanes_endpoint_fk',
      columns: [t.tenantId, t.endpointId],
      foreignColumns: [webhookEndpoints.tenantId, webhookEndpoints.id],
    }).onDelete('cascade'),
    index('webhook_lanes_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.nextAttemptAt} IS NOT NULL`),
    tenantIsolation(),
  ],
);
