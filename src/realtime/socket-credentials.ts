import type { FastifyBaseLogger } from 'fastify';
import type { Orm } from '../db/client.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { CredentialChange } from '../modules/auth/credential-cache.ts';
import { liveApiKeyIds } from '../modules/tenants/tenants.repository.ts';
import { erasedUserIds } from '../modules/users/users.repository.ts';
import type { Connection } from './connection.ts';

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

  constructor(
    private readonly orm: Orm,
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

  /** Asks the database which keys and users of the sockets are still live, and ends the others. */
  async check(): Promise<void> {
    if (this.isChecking) return;
    this.isChecking = true;
    try {
      const keyIds = [...this.byKey.keys()];
      if (keyIds.length > 0) {
        const live = await liveApiKeyIds(this.orm, keyIds);
        for (const keyId of keyIds) if (!live.has(keyId)) endAll(this.byKey.get(keyId), ENDED.keyGone);
      }
      for (const [tenantId, sockets] of [...this.byTenant]) {
        const userIds = [...new Set([...sockets].map((connection) => connection.userId))];
        const erased = new Set(await inTenant(this.orm, tenantId, (scope) => erasedUserIds(scope, userIds)));
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

function endAll(
  sockets: Set<Connection> | undefined,
  reason: string,
  which: (connection: Connection) => boolean = () => true,
): void {
  for (const connection of [...(sockets ?? [])]) if (which(connection)) connection.endCredentials(reason);
}

function addTo(index: Map<string, Set<Connection>>, key: string, connection: Connection): void {
  const set = index.get(key);
  if (set === undefined) index.set(key, new Set([connection]));
  else set.add(connection);
}

function removeFrom(index: Map<string, Set<Connection>>, key: string, connection: Connection): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(connection);
  if (set.size === 0) index.delete(key);
}
