import { Redis } from 'ioredis';
import { Compile } from 'typebox/compile';
import { BusMessage, type Bus } from '../modules/events/events.bus.ts';

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

/** Checks what arrives on the channel; compiled once. Per kind too, only to say what is wrong. */
const busMessageCheck = Compile(BusMessage);
const checkOfKind = new Map<unknown, ReturnType<typeof Compile>>(
  BusMessage.anyOf.map((schema) => [schema.properties.kind.const, Compile(schema)]),
);

/**
 * A message of the channel, or why it is not one: not JSON, or not a `BusMessage` (another version of
 * Parley, or anything else that publishes on the channel). Never throws.
 */
export function parseBusMessage(payload: string): BusMessage | string {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return 'not JSON';
  }
  if (busMessageCheck.Check(value)) return value;
  const kind: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'kind') : undefined;
  const check = checkOfKind.get(kind);
  if (check === undefined) return 'not a bus message (no known kind)';
  const [first] = check.Errors(value);
  return `not a bus message (${String(kind)}${first === undefined ? '' : `: ${first.instancePath || '/'} ${first.message}`})`;
}

/**
 * Reports dropped messages without flooding the log: the first at once, then at most one report every
 * 10 seconds, counting those dropped meanwhile. Never the payload itself, only its length.
 */
class DroppedMessages {
  private unreported = 0;
  private lastReportAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly report: (error: Error) => void) {}

  add(reason: string, length: number): void {
    this.unreported++;
    const now = Date.now();
    if (now - this.lastReportAt < 10_000) return;
    this.report(
      new Error(
        `dropped ${this.unreported} invalid bus message(s); the last: ${reason}, ${length} characters`,
      ),
    );
    this.unreported = 0;
    this.lastReportAt = now;
  }
}

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
  const dropped = new DroppedMessages(onError);
  void subscriber.subscribe(CHANNEL).catch(onError);
  // Runs inside ioredis's reply parser: nothing may throw out of it, whatever arrives on the channel.
  subscriber.on('message', (_channel: string, payload: string) => {
    const message = parseBusMessage(payload);
    if (typeof message === 'string') {
      dropped.add(message, payload.length);
      return;
    }
    for (const handler of handlers) {
      try {
        handler(message);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
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
