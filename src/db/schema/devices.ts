import { sql } from 'drizzle-orm';
import {
  boolean,
  foreignKey,
  index,
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
 * A user's device for end-to-end encryption (docs/E2EE.md): an MLS client, named in its KeyPackages'
 * credential as `<device id>:<user id>`. Its signature key is set by its first KeyPackage and binds the rest:
 * Parley vouches that this key is this device's.
 */
export const devices = pgTable(
  'devices',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    userId: text('user_id').notNull(),
    name: text('name'),
    /** The Ed25519 signature public key of its KeyPackages, base64; null until the first upload. */
    signatureKey: text('signature_key'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index('devices_user_idx').on(t.tenantId, t.userId),
    foreignKey({
      name: 'devices_user_fk',
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);

/**
 * A KeyPackage a device uploaded, waiting to be claimed: claimed ones are deleted, but a device's one
 * last-resort KeyPackage stays and is handed out again. `sha256` refuses a KeyPackage uploaded twice
 * (at most once per tenant: a reused KeyPackage lets two groups share a leaf's keys).
 */
export const keyPackages = pgTable(
  'key_packages',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    deviceId: uuid('device_id').notNull(),
    /** The MLSMessage bytes, base64, as uploaded. */
    keyPackage: text('key_package').notNull(),
    sha256: text('sha256').notNull(),
    isLastResort: boolean('is_last_resort').notNull().default(false),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex('key_packages_sha256_idx').on(t.tenantId, t.sha256),
    index('key_packages_device_idx').on(t.tenantId, t.deviceId, t.createdAt),
    uniqueIndex('key_packages_last_resort_idx')
      .on(t.tenantId, t.deviceId)
      .where(sql`${t.isLastResort}`),
    foreignKey({
      name: 'key_packages_device_fk',
      columns: [t.tenantId, t.deviceId],
      foreignColumns: [devices.tenantId, devices.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);
