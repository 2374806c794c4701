import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../db/client.ts';
import type { Bus } from '../modules/events/events.bus.ts';
import { consumerTenants } from '../modules/events/event-consumers.repository.ts';
import { dispatchWebhooks } from '../modules/webhooks/webhook-dispatcher.ts';
import { WebhookSender, type PostWebhook } from '../modules/webhooks/webhook-sender.ts';
import { WEBHOOK_CONSUMER } from '../modules/webhooks/webhooks.service.ts';

export interface BackgroundWorkOptions {
  orm: Orm;
  bus: Bus;
  log: FastifyBaseLogger;
  serverKey: string;
  /** Makes one webhook request (src/http/outbound.ts in the server). */
  post: PostWebhook;
  /** Where its gauges and counters go (GET /metrics). */
  metrics?: Registry;
  /** How often every followed tenant's log is read even without a wake-up (a lost one). */
  sweepEveryMs?: number;
  /** How often due deliveries are looked for without a wake-up (retries come due on their own). */
  sendEveryMs?: number;
  /** Lanes one pass of the sender claims, and so sends at once. */
  sendBatch?: number;
  retryScheduleMs?: readonly number[];
  disableAfterMs?: number;
}

/** Pages of one tenant's log one dispatch reads before giving the others their turn. */
const PAGES_PER_TURN = 20;
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
 * The process's background work (docs/BACKGROUND.md): follows the event log of every tenant with webhooks
 * (woken by the bus after each commit, and a sweep for wake-ups lost), turning events into deliveries,
 * and sends the deliveries that are due. Every process runs it; on PostgreSQL they share the work (a
 * tenant's position and each lane are claimed with SKIP LOCKED), on the embedded database the one does.
 */
export class BackgroundWork {
  private readonly followed = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly sender: WebhookSender;
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private dispatching: Promise<void> | undefined;
  private sending: Promise<void> | undefined;
  private sendAgain = false;
  private closed = false;

  constructor(private readonly options: BackgroundWorkOptions) {
    const attempts = options.metrics
      ? new Counter({
          name: 'parley_webhook_attempts_total',
          help: 'Webhook delivery attempts by outcome: delivered, retrying (failed, will retry), failed (gave up)',
          labelNames: ['outcome'] as const,
          registers: [options.metrics],
        })
      : undefined;
    this.sender = new WebhookSender({
      orm: options.orm,
      serverKey: options.serverKey,
      post: options.post,
      ...(options.retryScheduleMs === undefined ? {} : { retryScheduleMs: options.retryScheduleMs }),
      ...(options.disableAfterMs === undefined ? {} : { disableAfterMs: options.disableAfterMs }),
      onAttempt: (outcome) => attempts?.inc({ outcome }),
    });
    if (options.metrics) this.registerGauges(options.metrics);
  }

  start(): void {
    this.unsubscribe = this.options.bus.subscribe((message) => {
      if (message.kind === 'events' && this.followed.has(message.tenantId)) {
        this.dirty.add(message.tenantId);
        this.dispatch();
      }
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

  /** A tenant now has webhooks (created on this process): follow its log at once, not at the next sweep. */
  follow(tenantId: string): void {
    this.followed.add(tenantId);
  }

  /** Looks for due deliveries now. */
  wake(): void {
    if (this.closed) return;
    if (this.sending) {
      this.sendAgain = true;
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

  async close(): Promise<void> {
    this.closed = true;
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
    try {
      const tenants = await consumerTenants(this.options.orm, WEBHOOK_CONSUMER);
      this.followed.clear();
      for (const { tenantId, behind } of tenants) {
        this.followed.add(tenantId);
        if (behind) this.dirty.add(tenantId);
      }
      this.dispatch();
    } catch (error) {
      this.options.log.warn({ err: error }, 'background work: listing followed tenants failed');
    }
  }

  private dispatch(): void {
    if (this.closed || this.dispatching) return;
    this.dispatching = this.dispatchDirty().finally(() => {
      this.dispatching = undefined;
      if (this.dirty.size > 0) this.dispatch();
    });
  }

  private async dispatchDirty(): Promise<void> {
    for (const tenantId of this.dirty) {
      if (this.closed) return;
      this.dirty.delete(tenantId);
      try {
        let created = 0;
        for (let page = 0; page < PAGES_PER_TURN; page += 1) {
          const step = await dispatchWebhooks(this.options.orm, tenantId);
          created += step.created;
          if (!step.more) break;
          // A long backlog: give the other tenants their turn, and come back.
          if (page === PAGES_PER_TURN - 1) this.dirty.add(tenantId);
        }
        if (created > 0) this.wake();
      } catch (error) {
        this.options.log.warn(
          { err: error, tenantId },
          'background work: reading the log for webhooks failed',
        );
      }
    }
  }

  private async sendDue(): Promise<void> {
    const batch = this.options.sendBatch ?? 16;
    try {
      // Full passes mean more is due: go on until a pass finds less than a batch.
      while (!this.closed && (await this.sender.runOnce(batch)) === batch);
    } catch (error) {
      this.options.log.warn({ err: error }, 'background work: sending webhooks failed');
    }
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
      help: 'Background work waiting or given up, by kind and state (webhook: pending, failed; consumer:*: tenants followed)',
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
