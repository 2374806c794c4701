import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { asUser, createTenantWithUsers, expectProblem, type TestTenant } from './helpers/factories.ts';
import { keyPackageFor, newSignatureKeys } from './helpers/mls.ts';

// End-to-end encryption, first part (docs/E2EE.md): devices, and the KeyPackages the server checks, keeps and
// hands out once each.

const t = useTestApp();

interface DeviceBody {
  id: string;
  name: string | null;
  signature_key: string | null;
  key_packages_available: number;
  has_last_resort: boolean;
}
interface Claimed {
  data: { device_id: string; key_package: string; is_last_resort: boolean }[];
}

async function newDevice(tenant: TestTenant, userId: string, name?: string): Promise<DeviceBody> {
  const response = await asUser(t, tenant, userId).post('/v1/me/devices', name === undefined ? {} : { name });
  expect(response.statusCode).toBe(201);
  return response.json<DeviceBody>();
}

/** A device of `userId` with `count` KeyPackages and a last-resort one, all under one signature key. */
async function stockedDevice(tenant: TestTenant, userId: string, count: number) {
  const device = await newDevice(tenant, userId);
  const keys = await newSignatureKeys();
  const identity = `${device.id}:${userId}`;
  const keyPackages = await Promise.all(Array.from({ length: count }, () => keyPackageFor(identity, keys)));
  const lastResort = await keyPackageFor(identity, keys);
  const response = await asUser(t, tenant, userId).post(`/v1/me/devices/${device.id}/key-packages`, {
    key_packages: keyPackages,
    last_resort: lastResort,
  });
  expect(response.statusCode).toBe(200);
  return { device: response.json<DeviceBody>(), keys, identity, keyPackages, lastResort };
}

describe('devices', () => {
  it('registers, lists and removes the caller’s devices', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob');
    const laptop = await newDevice(tenant, 'alice', 'laptop');
    const phone = await newDevice(tenant, 'alice');
    expect(laptop).toMatchObject({ name: 'laptop', signature_key: null, key_packages_available: 0 });
    const listed = (await asUser(t, tenant, 'alice').get('/v1/me/devices')).json<{ data: DeviceBody[] }>();
    expect(listed.data.map((device) => device.id)).toEqual([laptop.id, phone.id]);

    // Bob can neither remove nor stock alice's device.
    expectProblem(await asUser(t, tenant, 'bob').delete(`/v1/me/devices/${laptop.id}`), 404, 'not_found');
    const identity = `${laptop.id}:bob`;
    const forged = await keyPackageFor(identity, await newSignatureKeys());
    expectProblem(
      await asUser(t, tenant, 'bob').post(`/v1/me/devices/${laptop.id}/key-packages`, {
        key_packages: [forged],
      }),
      404,
      'not_found',
    );
    expect((await asUser(t, tenant, 'alice').delete(`/v1/me/devices/${laptop.id}`)).statusCode).toBe(204);
    const after = (await asUser(t, tenant, 'alice').get('/v1/me/devices')).json<{ data: DeviceBody[] }>();
    expect(after.data.map((device) => device.id)).toEqual([phone.id]);
  });

  it('keeps a user to 20 devices', async () => {
    const tenant = await createTenantWithUsers(t, 'alice');
    for (let index = 0; index < 20; index += 1) await newDevice(tenant, 'alice');
    expectProblem(await asUser(t, tenant, 'alice').post('/v1/me/devices', {}), 409, 'conflict');
  });

  it('shows a user’s devices to those who share a conversation with them, and to nobody else', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob', 'mallory');
    const { device } = await stockedDevice(tenant, 'alice', 1);
    const group = await asUser(t, tenant, 'alice').post('/v1/conversations', {
      type: 'group',
      members: ['bob'],
    });
    expect(group.statusCode).toBe(201);
    const seen = (await asUser(t, tenant, 'bob').get('/v1/users/alice/devices')).json<{
      data: { id: string; user_id: string; signature_key: string }[];
    }>();
    expect(seen.data).toEqual([
      expect.objectContaining({ id: device.id, user_id: 'alice', signature_key: device.signature_key }),
    ]);
    expectProblem(await asUser(t, tenant, 'mallory').get('/v1/users/alice/devices'), 404, 'not_found');
  });
});

describe('KeyPackages', () => {
  it('hands each out once per device, then the last-resort one again and again', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob');
    const laptop = await stockedDevice(tenant, 'alice', 2);
    const phone = await stockedDevice(tenant, 'alice', 1);
    expect(laptop.device).toMatchObject({ key_packages_available: 2, has_last_resort: true });
    expect(laptop.device.signature_key).toBe(laptop.keys.publicKey);

    const claim = async () =>
      (await asUser(t, tenant, 'bob').post('/v1/users/alice/key-packages/claim')).json<Claimed>().data;
    const byDevice = (data: Claimed['data'], deviceId: string) =>
      data.find((row) => row.device_id === deviceId);

    const first = await claim();
    expect(first).toHaveLength(2);
    expect(byDevice(first, laptop.device.id)).toEqual({
      device_id: laptop.device.id,
      key_package: laptop.keyPackages[0],
      is_last_resort: false,
    });
    expect(byDevice(first, phone.device.id)?.key_package).toBe(phone.keyPackages[0]);
    const second = await claim();
    expect(byDevice(second, laptop.device.id)?.key_package).toBe(laptop.keyPackages[1]);
    expect(byDevice(second, phone.device.id)).toMatchObject({
      key_package: phone.lastResort,
      is_last_resort: true,
    });
    const third = await claim();
    expect(byDevice(third, laptop.device.id)).toMatchObject({
      key_package: laptop.lastResort,
      is_last_resort: true,
    });
    expect(byDevice(third, phone.device.id)).toMatchObject({
      key_package: phone.lastResort,
      is_last_resort: true,
    });

    const listed = (await asUser(t, tenant, 'alice').get('/v1/me/devices')).json<{ data: DeviceBody[] }>();
    expect(listed.data.map((device) => device.key_packages_available)).toEqual([0, 0]);

    // A removed device's KeyPackages go with it.
    await asUser(t, tenant, 'alice').delete(`/v1/me/devices/${phone.device.id}`);
    expect((await claim()).map((row) => row.device_id)).toEqual([laptop.device.id]);
  });

  it('gives two claims at once two different KeyPackages', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob', 'carol');
    const { keyPackages } = await stockedDevice(tenant, 'alice', 2);
    const [bobs, carols] = await Promise.all(
      ['bob', 'carol'].map(async (userId) =>
        (await asUser(t, tenant, userId).post('/v1/users/alice/key-packages/claim')).json<Claimed>(),
      ),
    );
    expect([bobs?.data[0]?.key_package, carols?.data[0]?.key_package].sort()).toEqual(
      [...keyPackages].sort(),
    );
  });

  it('refuses what is not a KeyPackage of this device, and stores nothing of a refused upload', async () => {
    const tenant = await createTenantWithUsers(t, 'alice', 'bob');
    const device = await newDevice(tenant, 'alice');
    const keys = await newSignatureKeys();
    const good = await keyPackageFor(`${device.id}:alice`, keys);
    const upload = (body: object) =>
      asUser(t, tenant, 'alice').post(`/v1/me/devices/${device.id}/key-packages`, body);

    const refusals: [string, string][] = [
      [Buffer.from('not mls at all').toString('base64'), 'is not an MLS message'],
      [await keyPackageFor(`${device.id}:bob`, keys), 'names'],
      [await keyPackageFor(`00000000-0000-7000-8000-000000000000:alice`, keys), 'names'],
    ];
    const tampered = Buffer.from(good, 'base64');
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
    refusals.push([tampered.toString('base64'), 'signature']);
    for (const [keyPackage, reason] of refusals) {
      const response = await upload({ key_packages: [good, keyPackage] });
      expect(expectProblem(response, 400, 'validation_failed').detail).toContain(reason);
      expect(response.json<{ errors: unknown[] }>().errors).toEqual([
        expect.objectContaining({ path: '/body/key_packages/1' }),
      ]);
    }
    const untouched = (await asUser(t, tenant, 'alice').get('/v1/me/devices')).json<{ data: DeviceBody[] }>();
    expect(untouched.data[0]).toMatchObject({ key_packages_available: 0, signature_key: null });

    // Stored once; the same bytes again are refused, and so is another signature key.
    expect((await upload({ key_packages: [good] })).statusCode).toBe(200);
    expectProblem(await upload({ key_packages: [good] }), 409, 'conflict');
    const otherKey = await keyPackageFor(`${device.id}:alice`, await newSignatureKeys());
    expectProblem(await upload({ key_packages: [otherKey] }), 409, 'conflict');
    expectProblem(await upload({ key_packages: [good.slice(0, -4)] }), 400, 'validation_failed');
  });

  it('keeps tenants apart: another tenant’s device is not found, its user has no KeyPackages here', async () => {
    const tenant = await createTenantWithUsers(t, 'alice');
    const other = await createTenantWithUsers(t, 'alice', 'eve');
    const { device, identity, keys } = await stockedDevice(tenant, 'alice', 1);
    expectProblem(await asUser(t, other, 'alice').delete(`/v1/me/devices/${device.id}`), 404, 'not_found');
    const forged = await keyPackageFor(identity, keys);
    expectProblem(
      await asUser(t, other, 'alice').post(`/v1/me/devices/${device.id}/key-packages`, {
        key_packages: [forged],
      }),
      404,
      'not_found',
    );
    const claimed = (
      await asUser(t, other, 'eve').post('/v1/users/alice/key-packages/claim')
    ).json<Claimed>();
    expect(claimed.data).toEqual([]);
  });
});
