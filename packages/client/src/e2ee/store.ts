/**
 * Where a device keeps its end-to-end encryption state: its id and signature keys, and the private half of
 * each KeyPackage it published until a Welcome uses it. Values are strings (JSON); keys are the SDK's.
 * Losing this store loses the device: its groups cannot be read any more, and it must register anew.
 */
export interface E2eeStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A store in memory: for tests, and for a device that is not meant to outlive its process or page. */
export class MemoryStore implements E2eeStore {
  readonly #values = new Map<string, string>();

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#values.get(key));
  }

  set(key: string, value: string): Promise<void> {
    this.#values.set(key, value);
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.#values.delete(key);
    return Promise.resolve();
  }
}
