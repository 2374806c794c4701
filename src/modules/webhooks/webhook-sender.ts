import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import { inTenant, type TenantScope } from '../../db/tenant-scope.ts';
import { newId } from '../../ids.ts';
import { toLoggedEvent } from '../events/event-envelope.ts';
import { encodeCursor } from '../events/events.cursor.ts';
import { currentSnapshot, readEventById } from '../events/events.repository.ts';
import { previewOf } from '../push/push-preview.ts';
import { tenantPushPreviews } from '../push/push.repository.ts';
import { receives } from './webhook-dispatcher.ts';
import { signWebhook } from './webhook-signing.ts';
import {
  claimLanes,
  laneHeads,
  recordSuccesses,
  enabledEndpoints,
  findEndpoint,
  idleLanesOf,
  insertDeliveries,
  laneHead,
  lockLane,
  scheduleLane,
  updateDelivery,
  updateEndpoint,
  type DeliveryRow,
  type EndpointRow,
  type LaneHead,
  type LaneKey,
  type WebhookSuccess,
} from './webhooks.repository.ts';
import { liveSecrets, webhookSecretBox } from './webhooks.service.ts';

const laneKey = (lane: LaneKey) => `${lane.tenantId} ${lane.endpointId} ${lane.lane}`;

/**
 * The contract's schedule: after the first attempt fails, the next waits 5 s, then 5 min, 30 min, 2 h,
 * 5 h, 10 h and 10 h; when the eighth attempt fails too, the delivery is `failed` (about 27.6 hours after
 * the first).
 */
export const RETRY_SCHEDULE_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
];
/** An endpoint whose every attempt has failed for this long is disabled. */
export const DISABLE_AFTER_MS = 5 * 24 * 3600_000;
/** How long a claimed lane is left to its claimer: longer than an attempt can take. */
export const LANE_LEASE_SECONDS = 60;
/** Deliveries of one lane sent on one claim before it goes back to the pool for the other lanes' turn. */
export const LANE_BURST = 100;

/** One HTTP attempt, as the outbound client answers it (src/http/outbound.ts). */
export interface AttemptResult {
  status?: number;
  /** Set when no HTTP status came back: refused address, timeout, connection failure. */
  error?: string;
}

/** Sends one request to a tenant's URL (src/http/outbound.ts, with its address checks and 15 s deadline). */
export type PostWebhook = (request: {
  url: string;
  headers: Record<string, string>;
  body: string;
}) => Promise<AttemptResult>;

export interface WebhookSenderOptions {
  orm: Orm;
  serverKey: string;
  post: PostWebhook;
  /** Waits between attempts; the contract's by default (tests shorten it). */
  retryScheduleMs?: readonly number[];
  disableAfterMs?: number;
  /** Counts what became of attempts (metrics). */
  onAttempt?: (outcome: 'delivered' | 'retrying' | 'failed') => void;
  /** Reports an attempt that failed by a fault of Parley's, not the receiver's (logged). */
  onError?: (error: unknown) => void;
}

/** What one attempt sends: the head delivery of a claimed lane, and the body as signed. */
interface Attempt {
  claim: LaneKey;
  url: string;
  deliveryId: string;
  /** Attempts made before this one. */
  attempts: number;
  messageId: string;
  body: string;
  secrets: string[];
}

/** Successes recorded in one statement at most. */
const RECORD_BATCH = 256;

/**
 * Sends due deliveries: claims lanes (one process per lane at a time) and works each claimed lane on its
 * own, one delivery after another; records the outcomes and schedules the lanes. Never holds a transaction
 * across an HTTP call: on the embedded database that would hold its one connection for up to 15 s.
 *
 * The common case is cheap (docs/BACKGROUND.md, "Throughput"): a claim reads every claimed lane's head in
 * one statement (parley_webhook_lane_heads), and the successes of every lane that finished an attempt
 * meanwhile are recorded together in one statement that returns each kept lane's next head
 * (parley_record_webhook_successes). A failure, a lane with nothing pending, a disabled endpoint or a
 * notification goes the careful way: its own transaction in its tenant, one step at a time.
 */
export class WebhookSender {
  private readonly box;
  private readonly schedule: readonly number[];
  private readonly disableAfterMs: number;
  /** Successes waiting for the statement under way to end, to be recorded together. */
  private readonly successes: {
    success: WebhookSuccess;
    resolve: (head: LaneHead | undefined) => void;
    reject: (error: unknown) => void;
  }[] = [];
  private recording: Promise<void> | undefined;
  /** Set by `nudge`: a pass looks for due lanes again as soon as it has room. */
  private nudged = false;
  private wakePass: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly options: WebhookSenderOptions) {
    this.box = webhookSecretBox(options.serverKey);
    this.schedule = options.retryScheduleMs ?? RETRY_SCHEDULE_MS;
    this.disableAfterMs = options.disableAfterMs ?? DISABLE_AFTER_MS;
  }

  /**
   * One pass: claims up to `limit` due lanes and works them concurrently, claiming more as lanes finish
   * while claims come back full or `nudge` said more is due. Returns how many lanes it claimed; rejects with
   * the first error of a lane (the others go on), once every lane is done.
   */
  async runOnce(limit: number): Promise<number> {
    const working = new Set<Promise<void>>();
    let claimed = 0;
    let failure: { error: unknown } | undefined;
    let lookAgain = true;
    while (!this.stopped) {
      if ((lookAgain || this.nudged) && working.size < limit) {
        this.nudged = false;
        const room = limit - working.size;
        const claims = await claimLanes(this.options.orm, room, LANE_LEASE_SECONDS);
        claimed += claims.length;
        // A full claim: more may be due.
        lookAgain = claims.length === room;
        for (const head of await laneHeads(this.options.orm, claims)) {
          const lane: Promise<void> = this.workLane(head)
            .catch((error: unknown) => {
              failure ??= { error };
            })
            .finally(() => working.delete(lane));
          working.add(lane);
        }
      }
      if (working.size === 0) break;
      await Promise.race([...working, new Promise<void>((resolve) => (this.wakePass = resolve))]);
      this.wakePass = undefined;
    }
    await Promise.all(working);
    if (failure !== undefined) throw failure.error;
    return claimed;
  }

  /** More may be due (new deliveries, a retry): a pass under way claims again when it has room. */
  nudge(): void {
    this.nudged = true;
    this.wakePass?.();
  }

  /** Claims no more lanes; those under way stop after their current attempt (shutdown). */
  stop(): void {
    this.stopped = true;
    this.wakePass?.();
  }

  /**
   * Sends a claimed lane's deliveries one after another, each once the one before it succeeded (or failed
   * for good), up to `LANE_BURST` of them on one claim: a conversation's events go as fast as its receiver
   * answers, not one per pass. Each outcome extends the claim's lease, so no other process takes the lane
   * meanwhile; the last one of a burst, or a retry, releases it.
   */
  private async workLane(first: LaneHead): Promise<void> {
    const claim: LaneKey = { tenantId: first.tenantId, endpointId: first.endpointId, lane: first.lane };
    let attempt = await this.attemptOf(first);
    for (let sent = 1; attempt !== undefined; sent += 1) {
      const mayKeep = sent < LANE_BURST && !this.stopped;
      const result = await this.send(attempt);
      if (result.status !== undefined && result.status >= 200 && result.status < 300) {
        this.options.onAttempt?.('delivered');
        const next = await this.recordSuccess({
          ...claim,
          deliveryId: attempt.deliveryId,
          status: result.status,
          keep: mayKeep,
        });
        attempt = next === undefined ? undefined : await this.attemptOf(next);
      } else {
        const current = attempt;
        const goOn = await inTenant(this.options.orm, claim.tenantId, (scope) =>
          this.record(scope, current, result, mayKeep),
        );
        attempt = goOn
          ? await inTenant(this.options.orm, claim.tenantId, (scope) => this.prepare(scope, claim))
          : undefined;
      }
    }
  }

  /** Posts one attempt, signed now. */
  private async send(attempt: Attempt): Promise<AttemptResult> {
    const at = new Date();
    try {
      return await this.options.post({
        url: attempt.url,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Parley-Webhooks/1',
          ...signWebhook(attempt.secrets, attempt.messageId, at, attempt.body),
        },
        body: attempt.body,
      });
    } catch (error) {
      // A bug, not the receiver's doing: counted as a failed attempt (retried), told to the tenant in
      // general words, and reported to the operator.
      this.options.onError?.(error);
      return { error: 'the attempt failed inside Parley' };
    }
  }

  /**
   * The attempt a lane's head makes, built from what the bulk read returned; the careful way (its own
   * transaction) when the head is not a plain event or payload to send: nothing pending, a disabled
   * endpoint, an event retention deleted, a notification.
   */
  private async attemptOf(head: LaneHead): Promise<Attempt | undefined> {
    const { delivery } = head;
    const claim: LaneKey = { tenantId: head.tenantId, endpointId: head.endpointId, lane: head.lane };
    let body: string | undefined;
    if (delivery !== undefined && !head.endpointDisabled) {
      if (delivery.source === 'test' || delivery.source === 'notice') {
        body = delivery.payload === null ? undefined : JSON.stringify(delivery.payload);
      } else if (delivery.source !== 'notification' && head.event !== undefined) {
        const cursor = delivery.cursor ?? encodeCursor({ prev: head.snapshot, at: Date.now() });
        body = JSON.stringify({
          type: head.event.type,
          timestamp: head.event.createdAt.toISOString(),
          data: toLoggedEvent(head.event, cursor),
        });
      }
    }
    if (delivery === undefined || body === undefined) {
      return inTenant(this.options.orm, claim.tenantId, (scope) => this.prepare(scope, claim));
    }
    return {
      claim,
      url: head.url,
      deliveryId: delivery.id,
      attempts: delivery.attempts,
      messageId: delivery.messageId,
      body,
      secrets: liveSecrets(head, (sealed) => this.box.open(sealed)),
    };
  }

  /**
   * Records a success with the others that finished meanwhile: one statement for all of them, started at
   * once when none is under way, else when the one under way ends. Resolves with the lane's next head when
   * its claim goes on.
   */
  private recordSuccess(success: WebhookSuccess): Promise<LaneHead | undefined> {
    return new Promise<LaneHead | undefined>((resolve, reject) => {
      this.successes.push({ success, resolve, reject });
      this.recordQueued();
    });
  }

  private recordQueued(): void {
    if (this.recording !== undefined || this.successes.length === 0) return;
    const batch = this.successes.splice(0, RECORD_BATCH);
    this.recording = (async () => {
      try {
        const heads = await recordSuccesses(
          this.options.orm,
          batch.map((queued) => queued.success),
          LANE_LEASE_SECONDS,
        );
        const byLane = new Map(heads.map((head) => [laneKey(head), head]));
        for (const queued of batch) queued.resolve(byLane.get(laneKey(queued.success)));
      } catch (error) {
        for (const queued of batch) queued.reject(error);
      }
    })().finally(() => {
      this.recording = undefined;
      this.recordQueued();
    });
  }

  /** The lane's head and what to send, or undefined when there is nothing to send (the lane goes idle). */
  private async prepare(scope: TenantScope, claim: LaneKey): Promise<Attempt | undefined> {
    const endpoint = await findEndpoint(scope, claim.endpointId);
    if (endpoint === undefined) return undefined;
    if (endpoint.disabledAt !== null) {
      await scheduleLane(scope, claim.endpointId, claim.lane, null);
      return undefined;
    }
    const delivery = await laneHead(scope, claim.endpointId, claim.lane);
    if (delivery === undefined) {
      await this.releaseLane(scope, claim.endpointId, claim.lane);
      return undefined;
    }
    const body = await this.bodyOf(scope, delivery);
    if (body === undefined) {
      // Retention deleted its event before it could go (an endpoint disabled for longer than the log).
      await updateDelivery(scope, delivery.id, {
        status: 'failed',
        nextAttemptAt: null,
        lastError: 'the event is no longer in the log (retention)',
      });
      await this.releaseLane(scope, claim.endpointId, claim.lane);
      return undefined;
    }
    return {
      claim,
      url: endpoint.url,
      deliveryId: delivery.id,
      attempts: delivery.attempts,
      messageId: delivery.messageId,
      body,
      secrets: liveSecrets(endpoint, (sealed) => this.box.open(sealed)),
    };
  }

  /** The Standard Webhooks body: `{type, timestamp, data}`, data the event as on the socket. */
  private async bodyOf(scope: TenantScope, delivery: DeliveryRow): Promise<string | undefined> {
    if (delivery.source === 'notification' && delivery.payload !== null && delivery.eventId !== null) {
      return JSON.stringify(await this.notificationOf(scope, delivery.payload, delivery.eventId));
    }
    if (delivery.payload !== null) return JSON.stringify(delivery.payload);
    if (delivery.eventId === null) return undefined;
    const event = await readEventById(scope, delivery.eventId);
    if (event === undefined) return undefined;
    // A replayed event carries the position of the replay: a reader resuming from it misses nothing new.
    const cursor = delivery.cursor ?? encodeCursor({ prev: await currentSnapshot(scope.tx), at: Date.now() });
    return JSON.stringify({
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      data: toLoggedEvent(event, cursor),
    });
  }

  /**
   * `notification.requested` as it goes now: the decision recorded by the push consumer, with a preview of
   * the message's text as the log has it now (none once the message is deleted, or when the tenant turned
   * previews off).
   */
  private async notificationOf(
    scope: TenantScope,
    payload: Record<string, unknown>,
    eventId: number,
  ): Promise<Record<string, unknown>> {
    const event = await readEventById(scope, eventId);
    const message = event?.type === 'message.created' ? event.data : null;
    if (message?.text == null || !(await tenantPushPreviews(scope))) return payload;
    const preview = previewOf(message.text, message.attachments);
    return { ...payload, data: { ...(payload.data as Record<string, unknown>), preview } };
  }

  /** With the lane locked: due again now if anything is pending in it, idle otherwise. */
  private async releaseLane(scope: TenantScope, endpointId: string, lane: string): Promise<void> {
    await lockLane(scope, endpointId, lane);
    const next = await laneHead(scope, endpointId, lane);
    await scheduleLane(scope, endpointId, lane, next === undefined ? null : 'now');
  }

  /**
   * Records an attempt's outcome, moves the delivery along its schedule and its endpoint's health, and
   * schedules the lane: a retry holds it until then; otherwise, with more pending, it stays claimed for
   * the caller when `mayKeep` (returns true), or is due again now. Locks in the order every writer of these
   * rows follows: the endpoint, then the lane, then the delivery.
   */
  private async record(
    scope: TenantScope,
    attempt: Attempt,
    result: AttemptResult,
    mayKeep: boolean,
  ): Promise<boolean> {
    const { lane } = attempt.claim;
    const endpoint = await findEndpoint(scope, attempt.claim.endpointId, true);
    // Deleted meanwhile: its deliveries and lanes went with it.
    if (endpoint === undefined) return false;
    await lockLane(scope, endpoint.id, lane);
    const delivered = result.status !== undefined && result.status >= 200 && result.status < 300;
    const attempts = attempt.attempts + 1;
    const wait = this.schedule[attempts - 1];
    const outcome = delivered ? 'delivered' : wait === undefined ? 'failed' : 'retrying';
    const retryAt = wait === undefined ? null : new Date(Date.now() + wait);
    await updateDelivery(scope, attempt.deliveryId, {
      status: outcome === 'retrying' ? 'pending' : outcome,
      attempts,
      nextAttemptAt: outcome === 'retrying' ? retryAt : null,
      lastAttemptAt: sql`now()`,
      lastStatusCode: result.status ?? null,
      lastError: delivered ? null : (result.error ?? `answered ${result.status ?? 'nothing'}`),
    });
    this.options.onAttempt?.(outcome);
    // Disabled by this failure: its lanes are idle now, and stay so until it is enabled.
    if (await this.recordHealth(scope, endpoint, delivered)) return false;
    // A retry holds its lane until then: what follows it in the lane waits, so order is kept.
    if (outcome === 'retrying') {
      await scheduleLane(scope, endpoint.id, lane, retryAt);
      return false;
    }
    const next = await laneHead(scope, endpoint.id, lane);
    if (next === undefined) {
      await scheduleLane(scope, endpoint.id, lane, null);
      return false;
    }
    const keep = mayKeep && endpoint.disabledAt === null;
    await scheduleLane(
      scope,
      endpoint.id,
      lane,
      keep ? new Date(Date.now() + LANE_LEASE_SECONDS * 1000) : 'now',
    );
    return keep;
  }

  /**
   * A success ends an endpoint's failing streak; a failure starts one, and one that has lasted
   * `disableAfterMs` disables the endpoint, and tells the tenant's other endpoints (`webhook.disabled`).
   * The endpoint is locked by the caller. Returns whether it disabled it.
   */
  private async recordHealth(
    scope: TenantScope,
    endpoint: EndpointRow,
    delivered: boolean,
  ): Promise<boolean> {
    if (endpoint.disabledAt !== null) return false;
    if (delivered) {
      if (endpoint.failingSince !== null) await updateEndpoint(scope, endpoint.id, { failingSince: null });
      return false;
    }
    if (endpoint.failingSince === null) {
      await updateEndpoint(scope, endpoint.id, { failingSince: new Date() });
      return false;
    }
    if (Date.now() - endpoint.failingSince.getTime() < this.disableAfterMs) return false;
    const disabled = await updateEndpoint(scope, endpoint.id, {
      disabledAt: new Date(),
      disabledReason: 'failing',
    });
    await idleLanesOf(scope, endpoint.id);
    await this.announceDisabled(scope, disabled);
    return true;
  }

  /** A `webhook.disabled` notice to every other enabled endpoint of the tenant that receives it. */
  private async announceDisabled(scope: TenantScope, disabled: EndpointRow): Promise<void> {
    const now = new Date();
    const others = (await enabledEndpoints(scope)).filter(
      (other) => other.id !== disabled.id && receives(other.events, 'webhook.disabled'),
    );
    await insertDeliveries(
      scope,
      others.map((other) => {
        const id = newId();
        return {
          id,
          endpointId: other.id,
          lane: id,
          source: 'notice',
          type: 'webhook.disabled',
          payload: {
            type: 'webhook.disabled',
            timestamp: now.toISOString(),
            data: {
              webhook_id: disabled.id,
              url: disabled.url,
              reason: 'failing',
              failing_since: disabled.failingSince?.toISOString() ?? null,
              disabled_at: disabled.disabledAt?.toISOString() ?? now.toISOString(),
            },
          },
          messageId: `msg_${id}`,
          nextAttemptAt: now,
        };
      }),
    );
  }
}
