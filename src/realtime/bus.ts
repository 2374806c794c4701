import { Redis } from 'ioredis';
import type { CredentialChange } from '../modules/auth/credential-cache.ts';

/** What processes tell each other. Events themselves live in the database; the bus only wakes readers. */
export type BusMessage =
  /** The event log of a tenant has new events: read it. */
  | { kind: 'events'; tenantId: string }
  /** Someone started or stopped typing (ephemeral; never stored). */
  | { kind: 'typing'; tenantId: string; conversationId: string; userId: string; isTyping: boolean }
  /** A process gained a user's first socket, or lost its last one for good (ephemeral). */
  | { kind: 'presence'; tenantId: string; userId: string; processId: string; isOnline: boolean }
  /** A process still has sockets of these users (`[tenantId, userId]`): renews its presence entries. */
  | { kind: 'presence_renewal'; processId: string; users: [string, string][] }
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

/** The default bus: one process, no network. Handlers run on a later tick, never inside the publisher. */
export function createLocalBus(): Bus {
  const handlers = new Set<(message: BusMessage) => void>();
  return {
    publish(message) {
      setImmediate(() => {
        for (const handler of handlers) handler(message);
      });
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    ping: () => Promise.resolve(),
    close: () => {
      handlers.clear();
      return Promise.resolve();
    },
  };
}

const CHANNEL = 'parley:bus:v1';

/**
 * Redis pub/sub between the processes serving one deployment. Only a wake-up path: a message lost while
 * a process is cut off from Redis is made up for by the periodic read of the event log.
 */
export function createRedisBus(url: string, onError: (error: Error) => void): Bus {
  const publisher = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  const subscriber = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  publisher.on('error', onError);
  subscriber.on('error', onError);
  const handlers = new Set<(message: BusMessage) => void>();
  void subscriber.subscribe(CHANNEL).catch(onError);
  subscriber.on('message', (_channel: string, payload: string) => {
    let message: BusMessage;
    try {
      message = JSON.parse(payload) as BusMessage;
    } catch (error) {
      onError(error as Error);
      return;
    }
    for (const handler of handlers) handler(message);
  });
  return {
    publish(message) {
      publisher.publish(CHANNEL, JSON.stringify(message)).catch(onError);
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async ping() {
      await publisher.ping();
    },
    async close() {
      handlers.clear();
      // quit() waits for Redis to answer; an unreachable Redis must not hold up shutdown.
      const timeout = new Promise((resolve) => setTimeout(resolve, 1000).unref());
      await Promise.race([Promise.allSettled([publisher.quit(), subscriber.quit()]), timeout]);
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
