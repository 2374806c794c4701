import type { SendOutcome, SendValues } from './message-sends.repository.ts';
import type { StoredMessage } from './messages.repository.ts';

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

/**
 * The messages of `sends` that are stored, matched by id, sender and conversation (`findStoredSends`): asked
 * only after a call failed, to tell the sends it committed anyway from those to try again.
 */
export type FindStoredSends<Tenant extends SendTenant> = (
  tenant: Tenant,
  sends: SendValues[],
) => Promise<StoredMessage[]>;

interface Pending<Tenant extends SendTenant> {
  tenant: Tenant;
  values: SendValues;
  resolve: (outcome: SendOutcome) => void;
  reject: (error: unknown) => void;
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
 * is tried again on its own, so that an error reaches only the caller whose send causes it. An error may
 * also come after the commit (a connection lost once COMMIT was sent, a result that cannot be read): so
 * before a send is tried again or refused, it is looked up by its id, and a stored one is answered as
 * created. A retry would otherwise fail on its own id, and a client that resends then would store it twice.
 */
export class SendBatcher<Tenant extends SendTenant> {
  private queue: Pending<Tenant>[] = [];
  private inFlight = 0;

  constructor(
    private readonly run: RunSends<Tenant>,
    private readonly findStored: FindStoredSends<Tenant>,
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
    let results: (SendOutcome | Error)[];
    try {
      results = await this.run(
        tenant,
        batch.map((pending) => pending.values),
      );
    } catch (error) {
      await this.recover(tenant, batch, error);
      return;
    }
    // A send whose result could not be read is its own error; it may still have been stored.
    const unreadable: { pending: Pending<Tenant>; error: Error }[] = [];
    batch.forEach((pending, index) => {
      const result = results[index] ?? new Error('a batch of sends returned no outcome for one of them');
      if (result instanceof Error) unreadable.push({ pending, error: result });
      else pending.resolve(result);
    });
    if (unreadable.length === 0) return;
    const stored = await this.storedOf(
      tenant,
      unreadable.map(({ pending }) => pending),
    );
    for (const { pending, error } of unreadable) {
      const message = stored.get(pending.values.id);
      if (message === undefined) pending.reject(error);
      else pending.resolve({ created: true, message });
    }
  }

  /**
   * After a failed call: the sends it stored anyway (its error came after its commit: a connection lost once
   * COMMIT was sent, a result that could not be read) are answered with their stored message; the others
   * are retried one by one when they were a batch, else get the call's error. Without this, a retry would
   * insert the same message id again and fail on it, for a message that is stored and delivered.
   */
  private async recover(tenant: Tenant, batch: Pending<Tenant>[], error: unknown): Promise<void> {
    const stored = await this.storedOf(tenant, batch);
    const unsent: Pending<Tenant>[] = [];
    for (const pending of batch) {
      const message = stored.get(pending.values.id);
      if (message === undefined) unsent.push(pending);
      else pending.resolve({ created: true, message });
    }
    if (batch.length === 1) {
      unsent[0]?.reject(error);
      return;
    }
    await Promise.all(unsent.map((pending) => this.sendAlone(pending)));
  }

  /** A send of a failed batch, tried again on its own, with the same message id. */
  private async sendAlone(pending: Pending<Tenant>): Promise<void> {
    let failure: unknown;
    try {
      const [result] = await this.run(pending.tenant, [pending.values]);
      if (result === undefined) throw new Error('a send of one returned no outcome');
      if (result instanceof Error) throw result;
      // Its batch's commit landed after the look-up, and the send's client_msg_id found it: the original is
      // this very send, so it is new to its sender.
      if (typeof result !== 'string' && result.message.id === pending.values.id) {
        pending.resolve({ created: true, message: result.message });
      } else {
        pending.resolve(result);
      }
      return;
    } catch (error) {
      failure = error;
    }
    // It failed on its own id, most likely: its batch's commit landed after the look-up. Look again.
    const message = (await this.storedOf(pending.tenant, [pending])).get(pending.values.id);
    if (message === undefined) pending.reject(failure);
    else pending.resolve({ created: true, message });
  }

  /** The stored messages of `sends`, by id; none when the look-up itself fails (the caller's error stands). */
  private async storedOf(tenant: Tenant, sends: Pending<Tenant>[]): Promise<Map<string, StoredMessage>> {
    try {
      const stored = await this.findStored(
        tenant,
        sends.map((pending) => pending.values),
      );
      return new Map(stored.map((message) => [message.id, message]));
    } catch {
      return new Map();
    }
  }
}
