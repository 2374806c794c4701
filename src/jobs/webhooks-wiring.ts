import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { Orm } from '../db/client.ts';
import { AppError } from '../errors.ts';
import type { Bus } from '../modules/events/events.bus.ts';
import type { PostWebhook } from '../modules/webhooks/webhook-sender.ts';
import { createWebhooksService } from '../modules/webhooks/webhooks.service.ts';
import { assertOutboundUrl, OutboundUrlError, type OutboundPolicy } from '../outbound/outbound-url.ts';
import { OutboundError, sendOutbound, type OutboundErrorKind } from '../outbound/send-outbound.ts';
import { BackgroundWork } from './background-work.ts';

/** What a tenant is told of an attempt that got no HTTP answer. */
const ATTEMPT_FAILURES: Record<OutboundErrorKind, string> = {
  refused_url: 'the url is not one Parley sends to',
  refused_address: 'the host is, or resolved to, an address Parley does not send to',
  unresolvable: 'the host name did not resolve',
  timeout: 'no complete answer within the deadline',
  aborted: 'the attempt was cut short (the server was shutting down)',
  tls: 'the TLS handshake failed',
  protocol: 'the answer was not HTTP/1.1',
  connect: 'the connection was refused, reset or could not be made',
};

/** How background work is paced; the contract's and the documented defaults when absent (tests shorten them). */
export interface BackgroundWorkTimings {
  retryScheduleMs?: readonly number[];
  disableAfterMs?: number;
  sweepEveryMs?: number;
  sendEveryMs?: number;
  /** The deadline of one webhook attempt; 15 s by the contract. */
  attemptTimeoutMs?: number;
}

/**
 * The webhooks service and the background work that delivers for it, joined to the outbound client: urls
 * are checked at creation (a 400 when refused) and every attempt goes through `sendOutbound`, which checks
 * the address again at connect time, follows no redirect and gives up at the deadline.
 */
export function createWebhooks(deps: {
  orm: Orm;
  bus: Bus;
  log: FastifyBaseLogger;
  serverKey: string;
  metrics: Registry;
  outbound: OutboundPolicy;
  timings?: BackgroundWorkTimings;
}) {
  const { timings = {} } = deps;
  // Closing aborts the attempts under way: their lanes go again after the lease, on this process or another.
  const closing = new AbortController();
  const post: PostWebhook = async ({ url, headers, body }) => {
    try {
      const response = await sendOutbound(
        {
          url,
          headers,
          body,
          signal: closing.signal,
          ...(timings.attemptTimeoutMs === undefined ? {} : { timeoutMs: timings.attemptTimeoutMs }),
        },
        deps.outbound,
      );
      return { status: response.status };
    } catch (error) {
      // Only the kind, in words of our own, reaches the tenant (the deliveries list): the client's message
      // can name an address the host resolved to, which would let a tenant map the operator's network.
      if (error instanceof OutboundError) return { error: `${error.kind}: ${ATTEMPT_FAILURES[error.kind]}` };
      throw error;
    }
  };
  const background = new BackgroundWork({
    orm: deps.orm,
    bus: deps.bus,
    log: deps.log,
    serverKey: deps.serverKey,
    post,
    metrics: deps.metrics,
    ...(timings.retryScheduleMs === undefined ? {} : { retryScheduleMs: timings.retryScheduleMs }),
    ...(timings.disableAfterMs === undefined ? {} : { disableAfterMs: timings.disableAfterMs }),
    ...(timings.sweepEveryMs === undefined ? {} : { sweepEveryMs: timings.sweepEveryMs }),
    ...(timings.sendEveryMs === undefined ? {} : { sendEveryMs: timings.sendEveryMs }),
  });
  const webhooks = createWebhooksService({
    orm: deps.orm,
    serverKey: deps.serverKey,
    checkUrl: async (url) => {
      try {
        await assertOutboundUrl(url, deps.outbound);
      } catch (error) {
        if (!(error instanceof OutboundUrlError)) throw error;
        throw new AppError('validation_failed', error.message, [
          { path: '/body/url', message: error.message },
        ]);
      }
    },
    wake: () => background.wake(),
    follow: (tenantId) => background.follow(tenantId),
  });
  return {
    webhooks,
    start: () => background.start(),
    close: async () => {
      closing.abort();
      await background.close();
    },
  };
}
