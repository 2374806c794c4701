import { integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { tenantIsolation } from './rls.ts';

/**
 * Stored responses of mutating requests sent with an `Idempotency-Key`, kept 24 h.
 * `tenant_id` is the nil UUID for operator requests; no foreign key, so rows simply expire.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    tenantId: uuid('tenant_id').notNull(),
    actor: text('actor').notNull(),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    /** NULL while the first request is still being handled. */
    status: integer('status'),
    responseHeaders: jsonb('response_headers').$type<Record<string, string>>(),
    /** The response body, sealed under the server key (src/sealed-box.ts). */
    responseBody: text('response_body'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.actor, t.key] }), tenantIsolation()],
);
