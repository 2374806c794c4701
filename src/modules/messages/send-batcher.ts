import type { SendOutcome, SendValues } from './message-sends.repository.ts';

/** Who the sends are for: their tenant (a `TenantDb` in the server), grouped into batches by its id. */
export interface SendTenant {
  readonly tenantId: string;
}

/**
 * Runs one tenant's sends as one statement and returns their outcomes in order (`sendMessageRows`); a send
 * whose result it cannot read is an `Error` in its place, not a throw that would fail the others.
 */
export type RunSends<Tenant extends SendTenant> = (
  tenant: Tenant,
  sends: SendValues[],
) => Promise<(SendOutcome | Error)[]>;

interface Pending<Tenant extends SendTenant> {
  tenant: Tenant;
  values: SendValues;
  resolve: (outcome: SendOutcome) => void;
  reject: (error: unknown) => void;
}

/** Answers a send with its outcome, or rejects it with its own error (a result that could not be read). */
function settle<Tenant extends SendTenant>(
  pending: Pending<Tenant>,
  outcome: SendOutcome | Error | undefined,
): void {
  if (outcome === undefined) pending.reject(new Error('a call of sends returned no outcome for one of them'));
  else if (outcome instanceof Error) pending.reject(outcome);
  else pending.resolve(outcome);
}

/**
 * Hands sends to the database in batches, the way PostgreSQL groups commits: at most `maxInFlight` calls
 * run at once, and the sends that arrive while they run wait, then go together as the next call (up to
 * `maxBatch` sends of one tenant). An idle server sends each message at once, alone; a busy one pays the
 * round trip, the call and the commit's WAL flush once per batch instead of once per message, so its
 * capacity grows with its load instead of its queue.
 *
 * Each caller still gets its own outcome: refusals are values, not errors (see `sendMessageRows`). A batch
 * is one transaction, so an error (a deadlock, a lost connection) undoes all of it; then each of its sends
 * is tried again on its own, so that an error reaches only the caller whose send causes it.
 */
export class SendBatcher<Tenant extends SendTenant> {
  private queue: Pending<Tenant>[] = [];
  private inFlight = 0;

  constructor(
    private readonly run: RunSends<Tenant>,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {
    if (!(maxInFlight >= 1 && maxBatch >= 1)) throw new Error('SendBatcher needs room for one send');
  }

  /** Sends one message; resolves once its batch has committed. */
  send(tenant: Tenant, values: SendValues): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve, reject) => {
      this.queue.push({ tenant, values, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (
      let head = this.queue[0];
      head !== undefined && this.inFlight < this.maxInFlight;
      head = this.queue[0]
    ) {
      const { tenant } = head;
      const batch = this.takeBatch(tenant.tenantId);
      this.inFlight += 1;
      void this.dispatch(tenant, batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /** The oldest waiting sends of `tenantId`, in arrival order, up to `maxBatch`; the rest keep waiting. */
  private takeBatch(tenantId: string): Pending<Tenant>[] {
    const batch: Pending<Tenant>[] = [];
    const rest: Pending<Tenant>[] = [];
    for (const pending of this.queue) {
      if (pending.tenant.tenantId === tenantId && batch.length < this.maxBatch) batch.push(pending);
      else rest.push(pending);
    }
    this.queue = rest;
    return batch;
  }

  private async dispatch(tenant: Tenant, batch: Pending<Tenant>[]): Promise<void> {
    try {
      const outcomes = await this.run(
        tenant,
        batch.map((pending) => pending.values),
      );
      batch.forEach((pending, index) => settle(pending, outcomes[index]));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      await Promise.all(
        batch.map(async (pending) => {
          try {
            const [outcome] = await this.run(pending.tenant, [pending.values]);
            settle(pending, outcome);
          } catch (alone) {
            pending.reject(alone);
          }
        }),
      );
    }
  }
}
