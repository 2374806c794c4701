import type { TenantScope } from '../../db/tenant-scope.ts';
import type { Bus } from '../../realtime/bus.ts';
import { insertEvents, type NewEvent } from './events.repository.ts';

/** Where services record what happened, in the transaction that made it happen. */
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
