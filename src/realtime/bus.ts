import { Redis } from 'ioredis';
import type { Bus, BusMessage } from '../modules/events/events.bus.ts';

// The bus the events module defines (events.bus.ts), implemented here: in process, and over Redis.

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
