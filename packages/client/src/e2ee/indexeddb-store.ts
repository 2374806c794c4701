import type { E2eeStore } from './store.js';

// The little of IndexedDB this store uses, typed here: the SDK is compiled without the DOM library (the
// server shares its type check), as its WebSocket is.
interface IDBRequest<T = unknown> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IDBOpenDBRequest extends IDBRequest<IDBDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IDBObjectStore {
  readonly transaction: IDBTransaction;
  get(key: string): IDBRequest;
  put(value: string, key: string): IDBRequest;
  delete(key: string): IDBRequest;
}
interface IDBTransaction {
  readonly error: unknown;
  objectStore(name: string): IDBObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IDBDatabase {
  createObjectStore(name: string): unknown;
  transaction(name: string, mode: 'readonly' | 'readwrite'): IDBTransaction;
}
/** The browser's `indexedDB`, as far as this store needs it. */
export interface IDBFactory {
  open(name: string, version: number): IDBOpenDBRequest;
}

const OBJECT_STORE = 'values';
const asError = (error: unknown, fallback: string) => (error instanceof Error ? error : new Error(fallback));

/** A request's result, as a promise. */
function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(asError(request.error, 'IndexedDB request failed'));
  });
}

/**
 * A store in the browser's IndexedDB, for a device that is a browser profile: one database of the page's
 * origin, named `database`, holding one object store of strings. What it keeps is readable by any script of
 * that origin (as anything a web page keeps is): the page's Content-Security-Policy is what guards it.
 */
export class IndexedDbStore implements E2eeStore {
  readonly #database: Promise<IDBDatabase>;

  constructor(
    database = 'parley-e2ee',
    factory: IDBFactory = (globalThis as unknown as { indexedDB: IDBFactory }).indexedDB,
  ) {
    const opening = factory.open(database, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(OBJECT_STORE);
    this.#database = done(opening);
  }

  async get(key: string): Promise<string | undefined> {
    const value: unknown = await done((await this.#objects('readonly')).get(key));
    return typeof value === 'string' ? value : undefined;
  }

  async set(key: string, value: string): Promise<void> {
    await this.#write((objects) => objects.put(value, key));
  }

  async delete(key: string): Promise<void> {
    await this.#write((objects) => objects.delete(key));
  }

  async #objects(mode: 'readonly' | 'readwrite'): Promise<IDBObjectStore> {
    return (await this.#database).transaction(OBJECT_STORE, mode).objectStore(OBJECT_STORE);
  }

  /** A write, resolved once its transaction has committed (not merely once the request succeeded). */
  async #write(change: (objects: IDBObjectStore) => IDBRequest): Promise<void> {
    const objects = await this.#objects('readwrite');
    const { transaction } = objects;
    const committed = new Promise<void>((resolve, reject) => {
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(asError(transaction.error, 'IndexedDB transaction failed'));
      transaction.onabort = () => reject(asError(transaction.error, 'IndexedDB transaction aborted'));
    });
    change(objects);
    await committed;
  }
}
