import webpush from 'web-push';
import type { Orm } from '../../db/client.ts';
import { inTenant, type TenantScope } from '../../db/tenant-scope.ts';
import type { VapidKeys } from '../../vapid-keys.ts';
import { readEventById } from '../events/events.repository.ts';
import type { AttemptResult } from '../webhooks/webhook-sender.ts';
import { previewOf } from './push-preview.ts';
import type { PushPayload } from './push.schemas.ts';
import {
  claimPushDeliveries,
  deletePushDelivery,
  deleteSubscription,
  findPushDelivery,
  recordPushFailure,
  tenantPushPreviews,
  type PushDeliveryRow,
  type SubscriptionRow,
} from './push.repository.ts';

/**
 * Waits after a failed attempt: 10 s, 1 min, 5 min, 30 min; when the fifth attempt fails too, the push is
 * `failed` (about 36 minutes after the first). Push is best effort: a notification hours late is noise.
 */
export const PUSH_RETRY_SCHEDULE_MS: readonly number[] = [10_000, 60_000, 5 * 60_000, 30 * 60_000];
/** How long a claimed push is left to its claimer: longer than an attempt can take. */
export const PUSH_LEASE_SECONDS = 60;
/** How long the push service keeps a message for a device that is offline (the TTL header). */
export const PUSH_TTL_SECONDS = 24 * 3600;

/** One request to a push service: the encrypted, signed push. */
export interface PushRequest {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Sends one request to a push service (src/outbound, with its address checks and deadline). */
export type SendPush = (request: PushRequest) => Promise<AttemptResult>;

/** What became of an attempt: sent (2xx), gone (404/410: the subscription is removed), retrying, failed. */
export type PushOutcome = 'sent' | 'gone' | 'retrying' | 'failed';

export interface PushSenderOptions {
  orm: Orm;
  vapidKeys: () => Promise<VapidKeys>;
  send: SendPush;
  /** Waits between attempts; PUSH_RETRY_SCHEDULE_MS by default (tests shorten it). */
  retryScheduleMs?: readonly number[];
  /** Counts what became of attempts (metrics). */
  onAttempt?: (outcome: PushOutcome) => void;
}

/** What one claimed push sends. */
interface Prepared {
  delivery: PushDeliveryRow;
  subscription: SubscriptionRow;
  payload: PushPayload;
}

/** The Topic of a conversation's pushes: its id without dashes (32 characters, the most RFC 8030 allows). */
export const topicOf = (conversationId: string) => conversationId.replaceAll('-', '');

/** Whether a failed answer may succeed later: server errors, timeouts, rate limits (not other 4xx). */
const isRetryable = (status: number | undefined) =>
  status === undefined || status >= 500 || status === 408 || status === 429;

/**
 * Sends due pushes: claims them (one process per push at a time), encrypts each to its subscription
 * (RFC 8291, aes128gcm) with a VAPID signature, sends it through the outbound client, and records the
 * outcome. Never holds a transaction across an HTTP call.
 */
export class PushSender {
  private readonly schedule: readonly number[];

  constructor(private readonly options: PushSenderOptions) {
    this.schedule = options.retryScheduleMs ?? PUSH_RETRY_SCHEDULE_MS;
  }

  /** One pass: claims up to `limit` due pushes and sends them concurrently. Returns how many. */
  async runOnce(limit: number): Promise<number> {
    const claims = await claimPushDeliveries(this.options.orm, limit, PUSH_LEASE_SECONDS);
    await Promise.all(claims.map((claim) => this.sendOne(claim)));
    return claims.length;
  }

  private async sendOne(claim: { tenantId: string; id: string }): Promise<void> {
    const { orm } = this.options;
    const prepared = await inTenant(orm, claim.tenantId, (scope) => this.prepare(scope, claim.id));
    if (prepared === undefined) return;
    const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
    let request: PushRequest;
    try {
      request = await this.requestOf(prepared);
    } catch (error) {
      // Keys that cannot be encrypted to now never will be: no retry.
      const result = { error: `cannot build the push: ${message(error)}` };
      await inTenant(orm, claim.tenantId, (scope) => this.record(scope, prepared, result, false));
      return;
    }
    let result: AttemptResult;
    try {
      result = await this.options.send(request);
    } catch (error) {
      result = { error: message(error) };
    }
    await inTenant(orm, claim.tenantId, (scope) => this.record(scope, prepared, result, true));
  }

  /**
   * The push and what it says, read now: the text as the log has it (a message deleted meanwhile is not
   * pushed), the preview as the tenant wants it. Undefined when there is nothing to send.
   */
  private async prepare(scope: TenantScope, id: string): Promise<Prepared | undefined> {
    const found = await findPushDelivery(scope, id);
    if (found === undefined) return undefined;
    const event = await readEventById(scope, found.delivery.eventId);
    if (event?.type !== 'message.created' || event.data.text === null) {
      await deletePushDelivery(scope, id);
      return undefined;
    }
    const payload: PushPayload = {
      type: 'message.created',
      conversation_id: event.conversationId,
      message_id: event.data.id,
      sender_id: event.data.sender_id,
    };
    if (await tenantPushPreviews(scope)) payload.preview = previewOf(event.data.text, event.data.attachments);
    return { ...found, payload };
  }

  /** The encrypted, signed request (web-push builds it; src/outbound sends it). */
  private async requestOf({ subscription, delivery, payload }: Prepared): Promise<PushRequest> {
    const keys = await this.options.vapidKeys();
    const details = webpush.generateRequestDetails(
      { endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
      JSON.stringify(payload),
      {
        vapidDetails: { subject: keys.subject, publicKey: keys.publicKey, privateKey: keys.privateKey },
        TTL: PUSH_TTL_SECONDS,
        topic: topicOf(delivery.conversationId),
        urgency: 'high',
      },
    );
    const headers: Record<string, string> = {};
    // Typed as strings, but web-push gives TTL and Content-Length as numbers.
    const built: Record<string, unknown> = details.headers;
    for (const [name, value] of Object.entries(built)) {
      // The client sets the length of the body it sends.
      if (name.toLowerCase() !== 'content-length') headers[name] = String(value);
    }
    return { url: details.endpoint, headers, body: details.body };
  }

  private async record(
    scope: TenantScope,
    prepared: Prepared,
    result: AttemptResult,
    mayRetry: boolean,
  ): Promise<void> {
    const { delivery, subscription } = prepared;
    const { status } = result;
    let outcome: PushOutcome;
    if (status !== undefined && status >= 200 && status < 300) {
      outcome = 'sent';
      await deletePushDelivery(scope, delivery.id);
    } else if (status === 404 || status === 410) {
      // The browser unsubscribed, or the subscription expired: it will never take a push again.
      outcome = 'gone';
      await deleteSubscription(scope, subscription.id);
    } else {
      const attempts = delivery.attempts + 1;
      const wait = mayRetry && isRetryable(status) ? this.schedule[attempts - 1] : undefined;
      outcome = wait === undefined ? 'failed' : 'retrying';
      await recordPushFailure(scope, delivery.id, {
        attempts,
        nextAttemptAt: wait === undefined ? null : new Date(Date.now() + wait),
        statusCode: status ?? null,
        error: result.error ?? `answered ${status ?? 'nothing'}`,
      });
    }
    this.options.onAttempt?.(outcome);
  }
}
