import type { ApiKeyRow } from '../tenants/tenants.repository.ts';

/** What makes cached credentials stale: a revoked key, an erased user, a deleted tenant. */
export type CredentialChange =
  | { kind: 'api_key_revoked'; keyId: string }
  | { kind: 'user_erased'; tenantId: string; userId: string }
  | { kind: 'tenant_deleted'; tenantId: string };

export interface CredentialCacheOptions {
  /** How long a looked-up api key is trusted without asking the database again. */
  apiKeyTtlMs: number;
  /** How long a user seen active is trusted to still exist (not erased). */
  userTtlMs: number;
  /** Entries kept per kind; the oldest go first when full. */
  maxEntries: number;
  now?: () => number;
}

/**
 * The documented defaults. Every change above is forgotten at once in the process that made it and, through
 * the bus, in the others; the TTL only bounds how long a change made where the bus cannot reach (the CLI,
 * or while Redis is down) goes unseen.
 */
export const CREDENTIAL_CACHE_DEFAULTS: CredentialCacheOptions = {
  apiKeyTtlMs: 10_000,
  userTtlMs: 30_000,
  maxEntries: 100_000,
};

/** A Map that forgets entries after a TTL and its oldest entries when full. */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  deleteWhere(predicate: (key: string, value: V) => boolean): void {
    for (const [key, entry] of this.entries) if (predicate(key, entry.value)) this.entries.delete(key);
  }
}

const userKey = (tenantId: string, userId: string) => `${tenantId}/${userId}`;

/**
 * What the auth hook would otherwise read from the database on every request: the api key row behind a
 * credential, and whether a user already exists and is not erased. Only positive answers are kept (an
 * unknown or revoked key, an erased user, is asked again every time), so a cache can only be stale towards
 * letting a caller in, and every change that should shut one out is applied through `forget`.
 */
export class CredentialCache {
  private readonly keys: ExpiringMap<ApiKeyRow>;
  private readonly activeUsers: ExpiringMap<string>;
  /**
   * Bumped by every `forget`. A lookup takes it before reading the database and hands it back to
   * `remember…`, which drops the answer if anything was forgotten meanwhile: a read that raced a revocation
   * or an erasure must not put the old answer back.
   */
  private generation = 0;

  constructor(options: CredentialCacheOptions = CREDENTIAL_CACHE_DEFAULTS) {
    const now = options.now ?? (() => performance.now());
    this.keys = new ExpiringMap(options.apiKeyTtlMs, options.maxEntries, now);
    this.activeUsers = new ExpiringMap(options.userTtlMs, options.maxEntries, now);
  }

  /** Take before reading the database; pass to `remember…` with what was read. */
  get currentGeneration(): number {
    return this.generation;
  }

  liveApiKey(keyId: string): ApiKeyRow | undefined {
    return this.keys.get(keyId);
  }

  rememberLiveApiKey(row: ApiKeyRow, readAtGeneration: number): void {
    if (row.revokedAt === null && readAtGeneration === this.generation) this.keys.set(row.id, row);
  }

  isKnownActiveUser(tenantId: string, userId: string): boolean {
    return this.activeUsers.get(userKey(tenantId, userId)) !== undefined;
  }

  rememberActiveUser(tenantId: string, userId: string, readAtGeneration: number): void {
    if (readAtGeneration === this.generation) this.activeUsers.set(userKey(tenantId, userId), tenantId);
  }

  forget(change: CredentialChange): void {
    this.generation++;
    switch (change.kind) {
      case 'api_key_revoked':
        this.keys.delete(change.keyId);
        return;
      case 'user_erased':
        this.activeUsers.delete(userKey(change.tenantId, change.userId));
        return;
      case 'tenant_deleted':
        this.keys.deleteWhere((_, row) => row.tenantId === change.tenantId);
        this.activeUsers.deleteWhere((_, tenantId) => tenantId === change.tenantId);
        return;
    }
  }
}
