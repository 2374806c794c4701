import type { TenantScope } from '../../db/tenant-scope.ts';
import type { Bus } from './events.bus.ts';
import { insertEvents } from './events.repository.ts';
import type { NewEvent } from './events.schemas.ts';

/**
 * Where services record what happened, in the transaction that made it happen. Each event's `data` must
 * match its type's schema (events.schemas.ts) at compile time.
 */
export interface EventLog {
  record(scope: TenantScope, conversationId: string, events: NewEvent[]): Promise<void>;
  /** Wakes every process's readers for events a statement recorded itself (the send function), once committed. */
  announce(tenantId: string): void;
}

/** Records events in the log and, once the transaction commits, wakes every process's readers. */
export function createEventLog(bus: Bus): EventLog {
  return {
    async record(scope, conversationId, events) {
      await insertEvents(scope, conversationId, events);
      scope.afterCommit(() => bus.publish({ kind: 'events', tenantId: scope.tenantId }));
    },
    announce(tenantId) {
      bus.publish({ kind: 'events', tenantId });
    },
  };
}
