import { sql } from 'drizzle-orm';
import { bigint, boolean, index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

// Control-plane tables: the registry that routes a credential to its tenant. They are read before any
// tenant is known (a JWT names only its key id), so they are not under row-level security; they hold no
// tenant content, and api key secrets appear only as SHA-256 hashes. See docs/ARCHITECTURE.md.

/** A customer of this Parley deployment; everything else belongs to exactly one tenant. */
export const tenants = pgTable('tenants', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  /** Whether Web Push messages and `notification.requested` carry a preview of the text (docs/PUSH.md). */
  pushPreviews: boolean('push_previews').notNull().default(true),
  /** The most bytes of attachments the tenant may keep; null: the deployment's default (docs/ATTACHMENTS.md). */
  storageQuotaBytes: bigint('storage_quota_bytes', { mode: 'number' }),
  /** The bytes its attachments keep in storage now (every rendition), kept by the attachments' writes. */
  storageBytes: bigint('storage_bytes', { mode: 'number' }).notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
});

/** A tenant backend credential. The secret is derived from the server key and never stored. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    secretHash: text('secret_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [index('api_keys_tenant_idx').on(t.tenantId, t.id)],
);

/** Deployment-wide settings such as the generated admin token's hash. */
export const settings = pgTable('settings', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 })
    .notNull()
    .default(sql`now()`),
});
