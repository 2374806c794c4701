import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/node.ts';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { claimKeyPackages, E2eeDevice, FileStore, MemoryStore } from '../src/e2ee/node.ts';
import { tenantWith, useServer } from './helpers.ts';

// The SDK's end-to-end encryption entry against a real server: this device registered once and kept in its
// store, KeyPackages made with the MLS library and topped up, their secrets kept for the Welcomes to come.

const server = useServer();

describe('an E2EE device', () => {
  it('registers once, publishes KeyPackages others claim, and keeps their secrets', async () => {
    const { token } = await tenantWith(server.t, 'alice', 'bob');
    const alice = new ParleyClient({ baseUrl: server.url(), token: await token('alice') });
    const bob = new ParleyClient({ baseUrl: server.url(), token: await token('bob') });
    const store = new MemoryStore();

    const device = await E2eeDevice.open(alice, store, { name: 'laptop' });
    expect(device.userId).toBe('alice');
    // Opened again from its store: the same device, nothing new on the server.
    expect((await E2eeDevice.open(alice, store)).id).toBe(device.id);
    expect((await alice.get('/v1/me/devices')).data.map((d) => d.id)).toEqual([device.id]);

    expect(await device.replenish({ target: 3 })).toBe(4); // three, and a last-resort one
    const [listed] = (await alice.get('/v1/me/devices')).data;
    expect(listed).toMatchObject({
      name: 'laptop',
      key_packages_available: 3,
      has_last_resort: true,
      signature_key: device.signatureKey,
    });

    const [claimed] = await claimKeyPackages(bob, 'alice');
    expect(claimed).toMatchObject({ deviceId: device.id, isLastResort: false });
    const secrets = await device.secretsOf(claimed?.keyPackage ?? '');
    expect(Object.keys(secrets ?? {}).sort()).toEqual([
      'hpkePrivateKey',
      'initPrivateKey',
      'signaturePrivateKey',
    ]);
    expect(Object.values(secrets ?? {}).every((value) => typeof value === 'string' && value.length > 0)).toBe(
      true,
    );
    expect(await device.secretsOf(btoa('not one of mine'))).toBeUndefined();

    // Topped up to the target again: only the one claimed is replaced.
    expect(await device.replenish({ target: 3 })).toBe(1);
    expect((await alice.get('/v1/me/devices')).data[0]?.key_packages_available).toBe(3);
  });

  it('survives its process in a FileStore: the same device and its secrets, in a file only its owner reads', async () => {
    const { token } = await tenantWith(server.t, 'alice', 'bob');
    const alice = new ParleyClient({ baseUrl: server.url(), token: await token('alice') });
    const bob = new ParleyClient({ baseUrl: server.url(), token: await token('bob') });
    const dir = await mkdtemp(path.join(tmpdir(), 'parley-e2ee-'));
    try {
      const file = path.join(dir, 'device', 'alice.json');
      const device = await E2eeDevice.open(alice, new FileStore(file), { name: 'bot' });
      await device.replenish({ target: 2 });
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      // Another process, the same file: the same device, and the secrets of what it published.
      const again = await E2eeDevice.open(alice, new FileStore(file));
      expect(again.id).toBe(device.id);
      expect(again.signatureKey).toBe(device.signatureKey);
      const [claimed] = await claimKeyPackages(bob, 'alice');
      expect(await again.secretsOf(claimed?.keyPackage ?? '')).toBeDefined();
      expect((await alice.get('/v1/me/devices')).data).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
