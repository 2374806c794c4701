import { and, asc, eq, sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import { isAnyOf } from '../../db/params.ts';
import { devices, keyPackages } from '../../db/schema/devices.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type DeviceRow = typeof devices.$inferSelect;

/** A device with the state of its KeyPackages. */
export interface DeviceWithKeys extends DeviceRow {
  available: number;
  hasLastResort: boolean;
}

// Qualified by hand: Drizzle writes a column of a one-table select without its table, which inside these
// subqueries would name key_packages' own columns.
const keyCounts = {
  available: sql<number>`(SELECT count(*)::int FROM key_packages k
    WHERE k.tenant_id = devices.tenant_id AND k.device_id = devices.id AND NOT k.is_last_resort)`,
  hasLastResort: sql<boolean>`EXISTS (SELECT 1 FROM key_packages k
    WHERE k.tenant_id = devices.tenant_id AND k.device_id = devices.id AND k.is_last_resort)`,
};

/** A user's devices, oldest first (ids are UUIDv7). */
export function listDevices(scope: TenantScope, userId: string): Promise<DeviceWithKeys[]> {
  return scope.tx
    .select({ ...devicesColumns(), ...keyCounts })
    .from(devices)
    .where(and(eq(devices.tenantId, scope.tenantId), eq(devices.userId, userId)))
    .orderBy(asc(devices.id));
}

/** One of a user's devices; undefined when it is not theirs (or does not exist). */
export async function findDevice(
  scope: TenantScope,
  userId: string,
  deviceId: string,
  { forUpdate = false } = {},
): Promise<DeviceWithKeys | undefined> {
  const query = scope.tx
    .select({ ...devicesColumns(), ...keyCounts })
    .from(devices)
    .where(and(eq(devices.tenantId, scope.tenantId), eq(devices.userId, userId), eq(devices.id, deviceId)));
  const [row] = await (forUpdate ? query.for('update', { of: devices }) : query);
  return row;
}

function devicesColumns() {
  return {
    tenantId: devices.tenantId,
    id: devices.id,
    userId: devices.userId,
    name: devices.name,
    signatureKey: devices.signatureKey,
    createdAt: devices.createdAt,
  };
}

/** Locks the user's row, so that counting their devices and adding one cannot race another addition. */
export async function lockUser(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(
    sql`SELECT 1 FROM users WHERE tenant_id = ${scope.tenantId} AND id = ${userId} FOR UPDATE`,
  );
}

export async function insertDevice(
  scope: TenantScope,
  row: { id: string; userId: string; name: string | null },
): Promise<DeviceRow> {
  const [inserted] = await scope.tx
    .insert(devices)
    .values({ ...row, tenantId: scope.tenantId })
    .returning();
  if (!inserted) throw new Error('the device insert returned no row');
  return inserted;
}

/** Deletes one of a user's devices and its KeyPackages; false when it is not theirs. */
export async function deleteDevice(scope: TenantScope, userId: string, deviceId: string): Promise<boolean> {
  const rows = await scope.tx
    .delete(devices)
    .where(and(eq(devices.tenantId, scope.tenantId), eq(devices.userId, userId), eq(devices.id, deviceId)))
    .returning({ id: devices.id });
  return rows.length > 0;
}

export async function setSignatureKey(scope: TenantScope, deviceId: string, key: string): Promise<void> {
  await scope.tx
    .update(devices)
    .set({ signatureKey: key })
    .where(and(eq(devices.tenantId, scope.tenantId), eq(devices.id, deviceId)));
}

/** The given KeyPackage digests the tenant already holds (uploaded before, by any device). */
export async function knownDigests(scope: TenantScope, digests: string[]): Promise<Set<string>> {
  const rows = await scope.tx
    .select({ sha256: keyPackages.sha256 })
    .from(keyPackages)
    .where(and(eq(keyPackages.tenantId, scope.tenantId), isAnyOf(keyPackages.sha256, digests, 'text')));
  return new Set(rows.map((row) => row.sha256));
}

export async function insertKeyPackages(
  scope: TenantScope,
  rows: { id: string; deviceId: string; keyPackage: string; sha256: string; isLastResort: boolean }[],
): Promise<void> {
  if (rows.length === 0) return;
  await scope.tx.insert(keyPackages).values(rows.map((row) => ({ ...row, tenantId: scope.tenantId })));
}

export async function deleteLastResort(scope: TenantScope, deviceId: string): Promise<void> {
  await scope.tx
    .delete(keyPackages)
    .where(
      and(
        eq(keyPackages.tenantId, scope.tenantId),
        eq(keyPackages.deviceId, deviceId),
        eq(keyPackages.isLastResort, true),
      ),
    );
}

/**
 * Claims one KeyPackage of each device of a user: the oldest waiting one, deleted as it is handed out
 * (`SKIP LOCKED`: two claimers at once get different ones), else the device's last-resort one, which stays.
 * Devices with neither are left out.
 */
export async function claimKeyPackages(
  scope: TenantScope,
  userId: string,
): Promise<{ deviceId: string; keyPackage: string; isLastResort: boolean }[]> {
  const result = await scope.tx.execute(sql`
    WITH user_devices AS (
      SELECT id FROM devices WHERE tenant_id = ${scope.tenantId} AND user_id = ${userId}
    ), picked AS (
      SELECT p.id FROM user_devices d CROSS JOIN LATERAL (
        SELECT k.id FROM key_packages k
        WHERE k.tenant_id = ${scope.tenantId} AND k.device_id = d.id AND NOT k.is_last_resort
        ORDER BY k.created_at, k.id
        LIMIT 1 FOR UPDATE SKIP LOCKED
      ) p
    ), claimed AS (
      DELETE FROM key_packages k
      WHERE k.tenant_id = ${scope.tenantId} AND k.id IN (SELECT id FROM picked)
      RETURNING k.device_id, k.key_package, false AS is_last_resort
    )
    SELECT device_id, key_package, is_last_resort FROM claimed
    UNION ALL
    SELECT k.device_id, k.key_package, true
    FROM key_packages k JOIN user_devices d ON d.id = k.device_id
    WHERE k.tenant_id = ${scope.tenantId} AND k.is_last_resort
      AND k.device_id NOT IN (SELECT device_id FROM claimed)
    ORDER BY device_id`);
  return rowsOf<{ device_id: string; key_package: string; is_last_resort: boolean }>(result).map((row) => ({
    deviceId: row.device_id,
    keyPackage: row.key_package,
    isLastResort: row.is_last_resort,
  }));
}

/** Whether two users are members of one conversation together (or are the same user). */
export async function sharesConversation(
  scope: TenantScope,
  userId: string,
  otherId: string,
): Promise<boolean> {
  if (userId === otherId) return true;
  const result = await scope.tx.execute(sql`
    SELECT EXISTS (
      SELECT 1 FROM conversation_members a
      JOIN conversation_members b ON b.tenant_id = a.tenant_id AND b.conversation_id = a.conversation_id
      WHERE a.tenant_id = ${scope.tenantId} AND a.user_id = ${userId} AND b.user_id = ${otherId}
    ) AS shares`);
  return rowsOf<{ shares: boolean }>(result)[0]?.shares === true;
}
