import { createHash } from 'node:crypto';
import type { Orm } from '../../db/client.ts';
import { inTenantAsUser } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { AppError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { deviceIdentity, inspectKeyPackage, KeyPackageError } from '../../mls/key-packages.ts';
import {
  claimKeyPackages,
  deleteDevice,
  deleteLastResort,
  findDevice,
  insertDevice,
  insertKeyPackages,
  knownDigests,
  listDevices,
  lockUser,
  setSignatureKey,
  sharesConversation,
  type DeviceRow,
  type DeviceWithKeys,
} from './devices.repository.ts';
import {
  MAX_DEVICES_PER_USER,
  MAX_KEY_PACKAGES_PER_DEVICE,
  type Device,
  type UploadKeyPackagesBody,
} from './devices.schemas.ts';

const toDevice = (row: DeviceWithKeys): Device => ({
  id: row.id,
  name: row.name,
  signature_key: row.signatureKey,
  key_packages_available: row.available,
  has_last_resort: row.hasLastResort,
  created_at: row.createdAt.toISOString(),
});

const toPublicDevice = (row: DeviceRow) => ({
  id: row.id,
  user_id: row.userId,
  signature_key: row.signatureKey,
  created_at: row.createdAt.toISOString(),
});

const invalid = (path: string, message: string) =>
  new AppError('validation_failed', `a KeyPackage ${message}`, [{ path, message }]);

/** One uploaded KeyPackage, checked: its bytes as given, their digest, and the key that signed it. */
interface CheckedKeyPackage {
  base64: string;
  sha256: string;
  signatureKey: string;
  isLastResort: boolean;
  path: string;
}

/**
 * Checks every KeyPackage of an upload (docs/E2EE.md, "What Parley checks"): valid MLS, signed, and naming
 * the uploading device and its user; all signed by one key.
 */
async function checkUpload(
  body: UploadKeyPackagesBody,
  deviceId: string,
  userId: string,
): Promise<CheckedKeyPackage[]> {
  const expected = deviceIdentity(deviceId, userId);
  const given = [
    ...body.key_packages.map((base64, index) => ({
      base64,
      path: `/body/key_packages/${index}`,
      isLastResort: false,
    })),
    ...(body.last_resort === undefined
      ? []
      : [{ base64: body.last_resort, path: '/body/last_resort', isLastResort: true }]),
  ];
  const now = Math.floor(Date.now() / 1000);
  const checked: CheckedKeyPackage[] = [];
  for (const { base64, path, isLastResort } of given) {
    const bytes = Buffer.from(base64, 'base64');
    let facts;
    try {
      facts = await inspectKeyPackage(bytes, now);
    } catch (error) {
      if (error instanceof KeyPackageError) throw invalid(path, error.message);
      throw error;
    }
    if (facts.identity !== expected)
      throw invalid(path, `names "${facts.identity}", not this device ("${expected}")`);
    checked.push({
      base64,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      signatureKey: Buffer.from(facts.signatureKey).toString('base64'),
      isLastResort,
      path,
    });
  }
  const keys = new Set(checked.map((keyPackage) => keyPackage.signatureKey));
  if (keys.size > 1) throw invalid('/body', 'upload mixes signature keys: a device has one');
  const digests = new Set(checked.map((keyPackage) => keyPackage.sha256));
  if (digests.size < checked.length) throw invalid('/body', 'is given twice in one upload');
  return checked;
}

/** Devices and KeyPackages: what MLS clients need of the Delivery Service before any group (docs/E2EE.md). */
export function createDevicesService({ orm }: { orm: Orm }) {
  return {
    async create(ctx: TenantContext, name: string | undefined): Promise<Device> {
      return inTenantAsUser(orm, ctx, async (scope, userId) => {
        await lockUser(scope, userId);
        const existing = await listDevices(scope, userId);
        if (existing.length >= MAX_DEVICES_PER_USER) {
          throw new AppError(
            'conflict',
            `a user has at most ${MAX_DEVICES_PER_USER} devices: delete one (DELETE /v1/me/devices/{id}) first`,
          );
        }
        const row = await insertDevice(scope, { id: newId(), userId, name: name ?? null });
        return toDevice({ ...row, available: 0, hasLastResort: false });
      });
    },

    async list(ctx: TenantContext) {
      const rows = await inTenantAsUser(orm, ctx, (scope, userId) => listDevices(scope, userId));
      return { data: rows.map(toDevice) };
    },

    async remove(ctx: TenantContext, deviceId: string): Promise<void> {
      const deleted = await inTenantAsUser(orm, ctx, (scope, userId) =>
        deleteDevice(scope, userId, deviceId),
      );
      if (!deleted) throw notFound('device');
    },

    /** Another user's devices, for someone who shares a conversation with them (404 otherwise). */
    async listOf(ctx: TenantContext, otherId: string) {
      return inTenantAsUser(orm, ctx, async (scope, userId) => {
        if (!(await sharesConversation(scope, userId, otherId))) throw notFound('user');
        const rows = await listDevices(scope, otherId);
        return { data: rows.map(toPublicDevice) };
      });
    },

    /** Stores a device's KeyPackages once checked; answers the device with its new counts. */
    async uploadKeyPackages(
      ctx: TenantContext,
      deviceId: string,
      body: UploadKeyPackagesBody,
    ): Promise<Device> {
      // The signatures are checked before the transaction: no lock is held while they are.
      const checked = await checkUpload(body, deviceId, actingUserId(ctx));
      return inTenantAsUser(orm, ctx, async (scope, actingId) => {
        const device = await findDevice(scope, actingId, deviceId, { forUpdate: true });
        if (device === undefined) throw notFound('device');
        const key = checked[0]?.signatureKey;
        if (key !== undefined && device.signatureKey !== null && key !== device.signatureKey) {
          throw new AppError(
            'conflict',
            "the KeyPackages are signed by another key than this device's: a new key is a new device",
          );
        }
        const fresh = checked.filter((keyPackage) => !keyPackage.isLastResort).length;
        if (device.available + fresh > MAX_KEY_PACKAGES_PER_DEVICE) {
          throw new AppError(
            'conflict',
            `a device keeps at most ${MAX_KEY_PACKAGES_PER_DEVICE} KeyPackages waiting; it has ${device.available}`,
          );
        }
        const known = await knownDigests(
          scope,
          checked.map((keyPackage) => keyPackage.sha256),
        );
        const reused = checked.find((keyPackage) => known.has(keyPackage.sha256));
        if (reused !== undefined)
          throw new AppError('conflict', `the KeyPackage at ${reused.path} was uploaded before`);
        if (key !== undefined && device.signatureKey === null) await setSignatureKey(scope, deviceId, key);
        if (body.last_resort !== undefined) await deleteLastResort(scope, deviceId);
        await insertKeyPackages(
          scope,
          checked.map((keyPackage) => ({
            id: newId(),
            deviceId,
            keyPackage: keyPackage.base64,
            sha256: keyPackage.sha256,
            isLastResort: keyPackage.isLastResort,
          })),
        );
        // The device is locked: what it has now is what it had and what was just added.
        return toDevice({
          ...device,
          signatureKey: device.signatureKey ?? key ?? null,
          available: device.available + fresh,
          hasLastResort: device.hasLastResort || body.last_resort !== undefined,
        });
      });
    },

    /** One KeyPackage of each of a user's devices, each handed out once (the last-resort one again). */
    async claim(ctx: TenantContext, userId: string) {
      return inTenantAsUser(orm, ctx, async (scope) => {
        const claimed = await claimKeyPackages(scope, userId);
        return {
          data: claimed.map((row) => ({
            device_id: row.deviceId,
            key_package: row.keyPackage,
            is_last_resort: row.isLastResort,
          })),
        };
      });
    },
  };
}

export type DevicesService = ReturnType<typeof createDevicesService>;
