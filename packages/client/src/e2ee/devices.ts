import type { RestClient } from '../rest.js';
import { fromBase64 } from './base64.js';
import {
  deviceIdentity,
  newKeyPackage,
  newSignatureKeys,
  type KeyPackageSecrets,
  type SignatureKeys,
} from './mls.js';
import type { E2eeStore } from './store.js';

/** The most KeyPackages the server takes in one upload. */
const MAX_PER_UPLOAD = 50;
const DEVICE_KEY = 'parley.e2ee.device';
const secretsKey = (digest: string) => `parley.e2ee.key-package.${digest}`;

interface StoredDevice {
  id: string;
  userId: string;
  keys: SignatureKeys;
}

/** The SHA-256 of a KeyPackage's bytes, hex: what its secrets are kept under. */
async function digestOf(keyPackage: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', fromBase64(keyPackage));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * This device as an MLS client of Parley (docs/E2EE.md): registered once, its signature keys and the secrets
 * of the KeyPackages it publishes kept in an `E2eeStore`.
 *
 *     const device = await E2eeDevice.open(parley, store, { name: 'laptop' });
 *     await device.replenish();            // KeyPackages for others to add it to groups
 */
export class E2eeDevice {
  readonly id: string;
  readonly userId: string;
  readonly #keys: SignatureKeys;
  readonly #rest: RestClient;
  readonly #store: E2eeStore;

  private constructor(stored: StoredDevice, rest: RestClient, store: E2eeStore) {
    this.id = stored.id;
    this.userId = stored.userId;
    this.#keys = stored.keys;
    this.#rest = rest;
    this.#store = store;
  }

  /** The device kept in `store`; without one, a new device registered with the server and kept there. */
  static async open(
    rest: RestClient,
    store: E2eeStore,
    options: { name?: string } = {},
  ): Promise<E2eeDevice> {
    const kept = await store.get(DEVICE_KEY);
    if (kept !== undefined) return new E2eeDevice(JSON.parse(kept) as StoredDevice, rest, store);
    const me = await rest.get('/v1/me');
    // The keys before the device: a device registered without keys kept would be lost to this store.
    const keys = await newSignatureKeys();
    const device = await rest.post('/v1/me/devices', {
      body: options.name === undefined ? {} : { name: options.name },
    });
    const stored: StoredDevice = { id: device.id, userId: me.id, keys };
    await store.set(DEVICE_KEY, JSON.stringify(stored));
    return new E2eeDevice(stored, rest, store);
  }

  /** The Ed25519 public key of this device, base64: what others see in `GET /v1/users/{id}/devices`. */
  get signatureKey(): string {
    return this.#keys.publicKey;
  }

  /**
   * Tops this device's KeyPackages on the server up to `target` waiting, and gives it a last-resort one if it
   * has none. Each one's secrets are kept before it is uploaded. Answers how many were uploaded.
   */
  async replenish({ target = MAX_PER_UPLOAD }: { target?: number } = {}): Promise<number> {
    const { data } = await this.#rest.get('/v1/me/devices');
    const state = data.find((device) => device.id === this.id);
    if (state === undefined) throw new Error(`device ${this.id} is not registered any more`);
    let missing = Math.max(0, target - state.key_packages_available);
    let needsLastResort = !state.has_last_resort;
    let uploaded = 0;
    while (missing > 0 || needsLastResort) {
      const count = Math.min(missing, MAX_PER_UPLOAD);
      const keyPackages = await Promise.all(Array.from({ length: count }, () => this.#publish(false)));
      const lastResort = needsLastResort ? await this.#publish(true) : undefined;
      await this.#rest.post('/v1/me/devices/{device_id}/key-packages', {
        params: { path: { device_id: this.id } },
        body: { key_packages: keyPackages, ...(lastResort === undefined ? {} : { last_resort: lastResort }) },
      });
      uploaded += count + (lastResort === undefined ? 0 : 1);
      missing -= count;
      needsLastResort = false;
    }
    return uploaded;
  }

  /** The secrets of a KeyPackage this device published: for joining from a Welcome made for it. */
  async secretsOf(keyPackage: string): Promise<KeyPackageSecrets | undefined> {
    const kept = await this.#store.get(secretsKey(await digestOf(keyPackage)));
    return kept === undefined ? undefined : (JSON.parse(kept) as KeyPackageSecrets);
  }

  /** A new KeyPackage of this device, its secrets kept. */
  async #publish(lastResort: boolean): Promise<string> {
    const made = await newKeyPackage(deviceIdentity(this.id, this.userId), this.#keys, { lastResort });
    await this.#store.set(secretsKey(await digestOf(made.keyPackage)), JSON.stringify(made.secrets));
    return made.keyPackage;
  }
}

/** One KeyPackage of each of a user's devices (each handed out once): to add the user to a group. */
export async function claimKeyPackages(
  rest: RestClient,
  userId: string,
): Promise<{ deviceId: string; keyPackage: string; isLastResort: boolean }[]> {
  const { data } = await rest.post('/v1/users/{user_id}/key-packages/claim', {
    params: { path: { user_id: userId } },
  });
  return data.map((row) => ({
    deviceId: row.device_id,
    keyPackage: row.key_package,
    isLastResort: row.is_last_resort,
  }));
}
