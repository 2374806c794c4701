import { Counter, type Registry } from 'prom-client';
import { DEFAULT_VAPID_SUBJECT, type VapidConfig } from '../config.ts';
import type { Orm } from '../db/client.ts';
import { dispatchPush, type IsOnline } from '../modules/push/push-dispatcher.ts';
import { PushSender, type SendPush } from '../modules/push/push-sender.ts';
import { createPushService, PUSH_CONSUMER } from '../modules/push/push.service.ts';
import type { OutboundPolicy } from '../outbound/outbound-url.ts';
import { outboundAttempt } from './webhooks-wiring.ts';
import { lazyVapidKeys, resolveVapidKeys } from '../vapid-keys.ts';
import type { BackgroundWork } from './background-work.ts';
import { outboundUrlCheck, type BackgroundWorkTimings } from './webhooks-wiring.ts';

/**
 * The push service and its part of the background work (docs/PUSH.md), joined to the outbound client
 * (endpoints checked when subscribed, every push sent through `sendOutbound`) and to the presence of
 * sockets (`isOnline`, the hub's, given by app.ts: modules do not reach src/realtime).
 */
export function createPush(deps: {
  orm: Orm;
  background: BackgroundWork;
  serverKey: string;
  metrics: Registry;
  outbound: OutboundPolicy;
  vapid?: VapidConfig;
  isOnline: IsOnline;
  timings?: BackgroundWorkTimings;
}) {
  const { timings = {}, background, orm } = deps;
  const vapid = deps.vapid ?? { keys: undefined, subject: DEFAULT_VAPID_SUBJECT };
  const vapidKeys = lazyVapidKeys(() => resolveVapidKeys(orm, deps.serverKey, vapid.keys, vapid.subject));
  // Closing aborts the pushes under way: they go again after their lease, on this process or another.
  const closing = new AbortController();
  const send: SendPush = outboundAttempt(deps.outbound, closing.signal, timings.attemptTimeoutMs);
  const attempts = new Counter({
    name: 'parley_push_attempts_total',
    help: 'Web Push attempts by outcome: sent, gone (404/410: subscription removed), retrying, failed (gave up)',
    labelNames: ['outcome'] as const,
    registers: [deps.metrics],
  });
  const sender = new PushSender({
    orm,
    vapidKeys,
    send,
    ...(timings.pushRetryScheduleMs === undefined ? {} : { retryScheduleMs: timings.pushRetryScheduleMs }),
    onAttempt: (outcome) => attempts.inc({ outcome }),
  });
  background.addConsumer({
    name: PUSH_CONSUMER,
    step: (tenantId) => dispatchPush(orm, tenantId, deps.isOnline),
  });
  background.addSender({ name: 'push', runOnce: (limit) => sender.runOnce(limit) });
  const push = createPushService({
    orm,
    checkEndpoint: outboundUrlCheck(deps.outbound, '/body/endpoint'),
    vapidPublicKey: async () => (await vapidKeys()).publicKey,
    follow: (tenantId) => background.follow(PUSH_CONSUMER, tenantId),
  });
  return { push, close: () => closing.abort() };
}
