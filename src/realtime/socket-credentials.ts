import type { FastifyBaseLogger } from 'fastify';
import type { CredentialChange } from '../modules/auth/credential-cache.ts';
import type { TenantsService } from '../modules/tenants/tenants.service.ts';
import type { UsersService } from '../modules/users/users.service.ts';
import type { Connection } from './connection.ts';
import { addTo, removeFrom } from './keyed-sets.ts';

/** What the sockets' credentials are checked against: the services of the keys and of the users. */
export interface CredentialServices {
  tenants: Pick<TenantsService, 'liveApiKeyIds'>;
  users: Pick<UsersService, 'erasedUserIds'>;
}

/** The reasons a socket's credentials end, as its 4401 close says them (docs/REALTIME.md). */
export const ENDED = {
  keyRevoked: 'api key has been revoked',
  tenantDeleted: 'tenant has been deleted',
  keyGone: 'api key has been revoked or its tenant deleted',
  userErased: 'user has been erased',
  tokenExpired: 'token has expired',
} as const;

/**
 * What this process's sockets stand on: the api key that signed each one's token, its tenant and user.
 * A credential change ends the sockets standing on it (close 4401) the moment this process learns of it:
 * from the bus, at once; and, since the bus is best effort (Redis down, a change made by the CLI), from a
 * periodic look at the database, which bounds how long a socket can outlive its credentials.
 */
export class SocketCredentials {
  private readonly byKey = new Map<string, Set<Connection>>();
  private readonly byTenant = new Map<string, Set<Connection>>();
  private readonly timer: NodeJS.Timeout;
  private isChecking = false;
  /** Frames waiting for the next look at their api keys, by key id. */
  private unconfirmed = new Map<string, Set<PromiseWithResolversOf<boolean>>>();
  private isConfirming = false;

  constructor(
    private readonly services: CredentialServices,
    private readonly log: FastifyBaseLogger,
    checkEveryMs: number,
  ) {
    this.timer = setInterval(() => void this.check(), checkEveryMs);
    this.timer.unref();
  }

  add(connection: Connection): void {
    addTo(this.byKey, connection.keyId, connection);
    addTo(this.byTenant, connection.tenantId, connection);
  }

  remove(connection: Connection): void {
    removeFrom(this.byKey, connection.keyId, connection);
    removeFrom(this.byTenant, connection.tenantId, connection);
  }

  /** A change announced on the bus (by this process or another). */
  apply(change: CredentialChange): void {
    switch (change.kind) {
      case 'api_key_revoked':
        endAll(this.byKey.get(change.keyId), ENDED.keyRevoked);
        return;
      case 'tenant_deleted':
        endAll(this.byTenant.get(change.tenantId), ENDED.tenantDeleted);
        return;
      case 'user_erased':
        endAll(this.byTenant.get(change.tenantId), ENDED.userErased, (c) => c.userId === change.userId);
        return;
    }
  }

  /**
   * Whether the api key behind a socket is still live, asked of the database after the frame arrived: a
   * frame is carried out only then, so a revocation (or a tenant's deletion) refuses every frame that
   * reaches any process after it committed, whether or not the bus has told that process yet. A socket
   * whose key is gone is ended at once. Frames that arrive while a look is under way share the next one,
   * and one look runs at a time, so the answers come back in the order the frames arrived.
   */
  confirmKey(connection: Connection): Promise<boolean> {
    const waiter = promiseWithResolvers<boolean>();
    addTo(this.unconfirmed, connection.keyId, waiter);
    if (!this.isConfirming) void this.confirmUnconfirmed();
    return waiter.promise;
  }

  private async confirmUnconfirmed(): Promise<void> {
    this.isConfirming = true;
    try {
      while (this.unconfirmed.size > 0) {
        const batch = this.unconfirmed;
        this.unconfirmed = new Map();
        let live: Set<string>;
        try {
          live = await this.services.tenants.liveApiKeyIds([...batch.keys()]);
        } catch (error) {
          for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
          continue;
        }
        for (const [keyId, waiters] of batch) {
          const isLive = live.has(keyId);
          for (const waiter of waiters) waiter.resolve(isLive);
          // After the refused frames have answered (their error frames go out before the close).
          if (!isLive) setImmediate(() => endAll(this.byKey.get(keyId), ENDED.keyGone));
        }
      }
    } finally {
      this.isConfirming = false;
    }
  }

  /** Asks the database which keys and users of the sockets are still live, and ends the others. */
  async check(): Promise<void> {
    if (this.isChecking) return;
    this.isChecking = true;
    try {
      const keyIds = [...this.byKey.keys()];
      if (keyIds.length > 0) {
        const live = await this.services.tenants.liveApiKeyIds(keyIds);
        for (const keyId of keyIds) if (!live.has(keyId)) endAll(this.byKey.get(keyId), ENDED.keyGone);
      }
      for (const [tenantId, sockets] of [...this.byTenant]) {
        const userIds = [...new Set([...sockets].map((connection) => connection.userId))];
        const erased = new Set(await this.services.users.erasedUserIds(tenantId, userIds));
        if (erased.size > 0)
          endAll(this.byTenant.get(tenantId), ENDED.userErased, (c) => erased.has(c.userId));
      }
    } catch (error) {
      this.log.warn({ err: error }, 'checking the credentials of open sockets failed; trying again later');
    } finally {
      this.isChecking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

interface PromiseWithResolversOf<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

/** `Promise.withResolvers`, which Node 20 lacks. */
function promiseWithResolvers<T>(): PromiseWithResolversOf<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

function endAll(
  sockets: Set<Connection> | undefined,
  reason: string,
  which: (connection: Connection) => boolean = () => true,
): void {
  for (const connection of [...(sockets ?? [])]) if (which(connection)) connection.endCredentials(reason);
}
