import type { CredentialChange } from '../auth/credential-cache.ts';

// The bus is an interface the events module defines and the real-time side implements (src/realtime/bus.ts:
// in one process, or over Redis): the event log wakes readers through it, and processes share typing,
// presence and credential changes on it.

/** What processes tell each other. Events themselves live in the database; the bus only wakes readers. */
export type BusMessage =
  /** The event log of a tenant has new events: read it. */
  | { kind: 'events'; tenantId: string }
  /** Someone started or stopped typing (ephemeral; never stored). */
  | { kind: 'typing'; tenantId: string; conversationId: string; userId: string; isTyping: boolean }
  /**
   * A process gained a user's first socket, or lost its last one for good (ephemeral). `ttlMs`: how long
   * the entry lasts unless renewed, as the announcing process renews it (its PARLEY_PRESENCE_TTL_SECONDS):
   * readers judge the entry by it, not by their own setting (src/realtime/hub.ts).
   */
  | {
      kind: 'presence';
      tenantId: string;
      userId: string;
      processId: string;
      isOnline: boolean;
      ttlMs?: number;
    }
  /** A process still has sockets of these users (`[tenantId, userId]`): renews its presence entries. */
  | { kind: 'presence_renewal'; processId: string; users: [string, string][]; ttlMs?: number }
  /** A key was revoked, a user erased or a tenant deleted: drop what the auth cache holds of it. */
  | { kind: 'credentials'; change: CredentialChange };

/** Cross-process fan-out. Delivery is best effort: correctness must never depend on it. */
export interface Bus {
  publish(message: BusMessage): void;
  /** Every message published by any process, this one included. Returns the unsubscribe function. */
  subscribe(handler: (message: BusMessage) => void): () => void;
  /** Throws unless the bus can be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
