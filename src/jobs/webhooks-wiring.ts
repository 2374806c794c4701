import { Counter, type Registry } from 'prom-client';
import type { Orm } from '../db/client.ts';
import { AppError } from '../errors.ts';
import { dispatchWebhooks } from '../modules/webhooks/webhook-dispatcher.ts';
import { WebhookSender, type PostWebhook } from '../modules/webhooks/webhook-sender.ts';
import { createWebhooksService, WEBHOOK_CONSUMER } from '../modules/webhooks/webhooks.service.ts';
import { assertOutboundUrl, OutboundUrlError, type OutboundPolicy } from '../outbound/outbound-url.ts';
import { OutboundError, sendOutbound, type OutboundErrorKind } from '../outbound/send-outbound.ts';
import type { BackgroundWork } from './background-work.ts';

/** What a tenant is told of an attempt that got no HTTP answer. */
export const ATTEMPT_FAILURES: Record<OutboundErrorKind, string> = {
  refused_url: 'the url is not one Parley sends to',
  refused_address: 'the host is, or resolved to, an address Parley does not send to',
  unresolvable: 'the host name did not resolve',
  timeout: 'no complete answer within the deadline',
  aborted: 'the attempt was cut short (the server was shutting down)',
  tls: 'the TLS handshake failed',
  protocol: 'the answer was not HTTP/1.1',
  connect: 'the connection was refused, reset or could not be made',
};

/**
 * One attempt of background work (a webhook delivery, a push) through `sendOutbound`: its HTTP status, or
 * why none came, worded by kind only. The client's message can name an address the host resolved to,
 * which would let a tenant map the operator's network.
 */
export function outboundAttempt(policy: OutboundPolicy, signal: AbortSignal, timeoutMs: number | undefined) {
  return async (request: {
    url: string;
    headers: Record<string, string>;
    body: string | Uint8Array;
  }): Promise<{ status?: number; error?: string }> => {
    try {
      const response = await sendOutbound(
        { ...request, signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
        policy,
      );
      return { status: response.status };
    } catch (error) {
      if (error instanceof OutboundError) return { error: `${error.kind}: ${ATTEMPT_FAILURES[error.kind]}` };
      throw error;
    }
  };
}

/** How background work is paced; the contract's and the documented defaults when absent (tests shorten them). */
export interface BackgroundWorkTimings {
  retryScheduleMs?: readonly number[];
  disableAfterMs?: number;
  sweepEveryMs?: number;
  sendEveryMs?: number;
  /** The deadline of one webhook attempt; 15 s by the contract. */
  attemptTimeoutMs?: number;
  /** Waits between push attempts; docs/PUSH.md's by default. */
  pushRetryScheduleMs?: readonly number[];
}

/** A URL check for the services that store one: refused urls answer 400 at `path`. */
export function outboundUrlCheck(policy: OutboundPolicy, path: string) {
  return async (url: string) => {
    try {
      await assertOutboundUrl(url, policy);
    } catch (error) {
      if (!(error instanceof OutboundUrlError)) throw error;
      throw new AppError('validation_failed', error.message, [{ path, message: error.message }]);
    }
  };
}

/**
 * The webhooks service and its part of the background work, joined to the outbound client: urls are
 * checked at creation (a 400 when refused) and every attempt goes through `sendOutbound`, which checks the
 * address again at connect time, follows no redirect and gives up at the deadline.
 */
export function createWebhooks(deps: {
  orm: Orm;
  background: BackgroundWork;
  serverKey: string;
  metrics: Registry;
  outbound: OutboundPolicy;
  timings?: BackgroundWorkTimings;
}) {
  const { timings = {}, background } = deps;
  // Closing aborts the attempts under way: their lanes go again after the lease, on this process or another.
  const closing = new AbortController();
  const post: PostWebhook = outboundAttempt(deps.outbound, closing.signal, timings.attemptTimeoutMs);
  const attempts = new Counter({
    name: 'parley_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: delivered, retrying (failed, will retry), failed (gave up)',
    labelNames: ['outcome'] as const,
    registers: [deps.metrics],
  });
  const sender = new WebhookSender({
    orm: deps.orm,
    serverKey: deps.serverKey,
    post,
    ...(timings.retryScheduleMs === undefined ? {} : { retryScheduleMs: timings.retryScheduleMs }),
    ...(timings.disableAfterMs === undefined ? {} : { disableAfterMs: timings.disableAfterMs }),
    onAttempt: (outcome) => attempts.inc({ outcome }),
    onError: (error) => background.reportError(error, 'a webhook attempt failed in Parley'),
  });
  background.addConsumer({
    name: WEBHOOK_CONSUMER,
    step: (tenantId) => dispatchWebhooks(deps.orm, tenantId),
  });
  background.addSender({
    name: 'webhooks',
    runOnce: (limit) => sender.runOnce(limit),
    nudge: () => sender.nudge(),
    stop: () => sender.stop(),
  });
  const webhooks = createWebhooksService({
    orm: deps.orm,
    serverKey: deps.serverKey,
    checkUrl: outboundUrlCheck(deps.outbound, '/body/url'),
    wake: () => background.wake(),
    follow: (consumer, tenantId) => background.follow(consumer, tenantId),
  });
  return { webhooks, close: () => closing.abort() };
}
