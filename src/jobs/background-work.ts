import type { FastifyBaseLogger } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../db/client.ts';
import type { Bus } from '../modules/events/events.bus.ts';
import { consumerTenants } from '../modules/events/event-consumers.repository.ts';

/** A consumer of the event log (webhooks, push): its name in event_consumers and one step of it. */
export interface LogConsumer {
  name: string;
  /** One step of following a tenant's log, in one transaction; whether a full page was read. */
  step(tenantId: string): Promise<{ more: boolean; created: number }>;
}

/** Sends what is due: one pass claims up to `limit` items and sends them; returns how many it claimed. */
export interface WorkSender {
  name: string;
  runOnce(limit: number): Promise<number>;
  /** More is due: a pass under way looks for it (without this, the next pass does). */
  nudge?(): void;
  /** Shutdown: a pass under way claims no more. */
  stop?(): void;
}

export interface BackgroundWorkOptions {
  orm: Orm;
  bus: Bus;
  log: FastifyBaseLogger;
  /** Where its gauges go (GET /metrics); the senders count their attempts there themselves. */
  metrics?: Registry;
  /** How often every followed tenant's log is read even without a wake-up (a lost one). */
  sweepEveryMs?: number;
  /** How often due deliveries are looked for without a wake-up (retries come due on their own). */
  sendEveryMs?: number;
  /** Items one pass of a sender claims, and so sends at once. */
  sendBatch?: number;
}

/** Pages of one tenant's log one dispatch reads before giving the others their turn. */
const PAGES_PER_TURN = 20;
/**
 * Items a sender works at once: webhook lanes (each one delivery at a time) or pushes. Enough to keep a
 * backlog moving at thousands of deliveries a second over loopback; per origin, the outbound client opens a
 * few connections at most, so one slow receiver holds its own lanes only.
 */
const SEND_BATCH = 64;
/** How long closing waits for requests under way; a lane left mid-send is sent again after its lease. */
const CLOSE_WAIT_MS = 5_000;

/** What operators see (parley_background_work_stats): the rows waiting or failed, and since when. */
export async function backgroundWorkStats(
  orm: Orm,
): Promise<{ kind: string; state: string; items: number; oldest: Date | null }[]> {
  const result = await orm.execute(
    sql`SELECT kind, state, items, oldest FROM parley_background_work_stats()`,
  );
  return rowsOf<{ kind: string; state: string; items: string | number; oldest: string | Date | null }>(
    result,
  ).map((row) => ({
    kind: row.kind,
    state: row.state,
    items: Number(row.items),
    oldest: row.oldest === null ? null : new Date(row.oldest),
  }));
}

/**
 * The process's background work (docs/BACKGROUND.md): follows the event log of every tenant a consumer
 * follows (webhooks: tenants with endpoints; push: tenants with push subscriptions or endpoints receiving
 * `notification.requested`), woken by the bus after each commit, and a sweep for wake-ups lost, turning
 * events into deliveries; and runs the senders of what is due. Every process runs it; on PostgreSQL they
 * share the work (a tenant's position and each lane or push are claimed with SKIP LOCKED), on the
 * embedded database the one does.
 */
export class BackgroundWork {
  private readonly consumers = new Map<string, LogConsumer>();
  private readonly senders: WorkSender[] = [];
  /** The tenants each consumer follows. */
  private readonly followed = new Map<string, Set<string>>();
  /** Consumer and tenant pairs (`consumer\0tenant`) with events to read. */
  private readonly dirty = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private dispatching: Promise<void> | undefined;
  private sending: Promise<void> | undefined;
  private sendAgain = false;
  private closed = false;

  constructor(private readonly options: BackgroundWorkOptions) {
    if (options.metrics) this.registerGauges(options.metrics);
  }

  /** Adds a consumer of the log (before `start`). */
  addConsumer(consumer: LogConsumer): void {
    this.consumers.set(consumer.name, consumer);
    this.followed.set(consumer.name, new Set());
  }

  /** Adds a sender of due work (before `start`). */
  addSender(sender: WorkSender): void {
    this.senders.push(sender);
  }

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((message) => {
      if (message.kind !== 'events') return;
      let isDirty = false;
      for (const [consumer, tenants] of this.followed) {
        if (!tenants.has(message.tenantId)) continue;
        this.dirty.add(`${consumer}\u0000${message.tenantId}`);
        isDirty = true;
      }
      if (isDirty) this.dispatch();
    });
    const every = (ms: number, run: () => void) => {
      const timer = setInterval(run, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.sweepEveryMs ?? 10_000, () => void this.sweep());
    every(this.options.sendEveryMs ?? 1_000, () => this.wake());
    void this.sweep();
  }

  /**
   * A consumer now follows a tenant (started on this process): its wake-ups count at once, not from the
   * next sweep.
   */
  follow(consumer: string, tenantId: string): void {
    this.followed.get(consumer)?.add(tenantId);
  }

  /** Looks for due deliveries now. */
  wake(): void {
    if (this.closed) return;
    if (this.sending) {
      this.sendAgain = true;
      for (const sender of this.senders) sender.nudge?.();
      return;
    }
    this.sending = this.sendDue().finally(() => {
      this.sending = undefined;
      if (this.sendAgain) {
        this.sendAgain = false;
        this.wake();
      }
    });
  }

  /** Reports a fault of Parley's own in background work (a bug, not a receiver's doing). */
  reportError(error: unknown, what: string): void {
    this.options.log.error({ err: error }, `background work: ${what}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const sender of this.senders) sender.stop?.();
    this.unsubscribe?.();
    for (const timer of this.timers) clearInterval(timer);
    const under = [this.dispatching, this.sending].filter((work) => work !== undefined);
    await Promise.race([
      Promise.allSettled(under),
      new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref()),
    ]);
  }

  /** The tenants followed, and those behind read: what a lost wake-up left is found within a sweep. */
  private async sweep(): Promise<void> {
    for (const consumer of this.consumers.keys()) {
      try {
        const tenants = await consumerTenants(this.options.orm, consumer);
        const followed = new Set<string>();
        for (const { tenantId, behind } of tenants) {
          followed.add(tenantId);
          if (behind) this.dirty.add(`${consumer}\u0000${tenantId}`);
        }
        this.followed.set(consumer, followed);
      } catch (error) {
        this.options.log.warn({ err: error, consumer }, 'background work: listing followed tenants failed');
      }
    }
    this.dispatch();
  }

  private dispatch(): void {
    if (this.closed || this.dispatching) return;
    this.dispatching = this.dispatchDirty().finally(() => {
      this.dispatching = undefined;
      if (this.dirty.size > 0) this.dispatch();
    });
  }

  private async dispatchDirty(): Promise<void> {
    for (const key of this.dirty) {
      if (this.closed) return;
      this.dirty.delete(key);
      const [name = '', tenantId = ''] = key.split('\u0000');
      const consumer = this.consumers.get(name);
      if (consumer === undefined) continue;
      try {
        let created = 0;
        for (let page = 0; page < PAGES_PER_TURN; page += 1) {
          const step = await consumer.step(tenantId);
          created += step.created;
          if (!step.more) break;
          // A long backlog: give the other tenants their turn, and come back.
          if (page === PAGES_PER_TURN - 1) this.dirty.add(key);
        }
        if (created > 0) this.wake();
      } catch (error) {
        this.options.log.warn(
          { err: error, tenantId, consumer: name },
          'background work: reading the log failed',
        );
      }
    }
  }

  private async sendDue(): Promise<void> {
    const batch = this.options.sendBatch ?? SEND_BATCH;
    await Promise.all(
      this.senders.map(async (sender) => {
        try {
          // Go on while passes find due work (a webhook lane whose burst ran out is due again at once); a
          // pass that finds none ends it until the next wake-up or tick.
          while (!this.closed && (await sender.runOnce(batch)) > 0);
        } catch (error) {
          this.options.log.warn({ err: error, sender: sender.name }, 'background work: sending failed');
        }
      }),
    );
  }

  /**
   * The gauges of /metrics, from one query per scrape. Both gauges collect, and share the query under way:
   * a registry collects its metrics concurrently, so a gauge filled only by the other's collect would be
   * read before it is filled (a scrape behind, and empty on the first).
   */
  private registerGauges(registry: Registry): void {
    const { orm, log } = this.options;
    let collecting: Promise<void> | undefined;
    const collectBoth = () => {
      collecting ??= (async () => {
        items.reset();
        oldest.reset();
        try {
          const now = Date.now();
          for (const row of await backgroundWorkStats(orm)) {
            items.set({ kind: row.kind, state: row.state }, row.items);
            if (row.oldest !== null) {
              oldest.set(
                { kind: row.kind, state: row.state },
                Math.max(0, (now - row.oldest.getTime()) / 1000),
              );
            }
          }
        } catch (error) {
          log.warn({ err: error }, 'background work: reading its counts for /metrics failed');
        }
      })().finally(() => {
        collecting = undefined;
      });
      return collecting;
    };
    const items = new Gauge({
      name: 'parley_background_work_items',
      help: 'Background work waiting or given up, by kind and state (webhook, push: pending, failed; consumer:*: tenants followed)',
      labelNames: ['kind', 'state'] as const,
      registers: [registry],
      collect: collectBoth,
    });
    const oldest = new Gauge({
      name: 'parley_background_work_oldest_seconds',
      help: 'Age of the oldest item of each kind and state (for a consumer: how far behind its position is)',
      labelNames: ['kind', 'state'] as const,
      registers: [registry],
      collect: collectBoth,
    });
  }
}
