import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { newId } from '../../ids.ts';
import { encodeCursor } from '../events/events.cursor.ts';
import { lockConsumer, saveConsumer } from '../events/event-consumers.repository.ts';
import { readEventWindow } from '../events/events.repository.ts';
import { enabledEndpoints, insertDeliveries, type NewDelivery } from './webhooks.repository.ts';
import { WEBHOOK_CONSUMER } from './webhooks.service.ts';

/** Events read from the log per step at most: one short transaction each. */
export const DISPATCH_PAGE = 500;
/**
 * Deliveries one step makes at most (events read times the endpoints receiving them): the step holds the
 * lanes it arms until it commits, and a sender recording an attempt of one of them waits for that. With
 * ten endpoints, a page of 500 events made 5,000 deliveries in one transaction, and the senders stalled
 * behind it for seconds.
 */
export const DISPATCH_DELIVERIES = 2_000;

/** Whether an endpoint receives an event type. */
export const receives = (events: readonly string[], type: string) =>
  events.includes('*') || events.includes(type);

/**
 * One step of following a tenant's log for webhooks (docs/BACKGROUND.md), in one transaction: lock the
 * consumer's position (or leave it to the process that holds it), read the next page of events after it,
 * record a delivery per event and enabled endpoint that receives it, and move the position past them. The
 * position and the deliveries commit together, so a crash at any moment either leaves both as they were
 * (the page is read again) or both done: each event reaches each endpoint once. Returns whether a full
 * page was read (more may follow).
 */
export async function dispatchWebhooks(
  orm: Orm,
  tenantId: string,
): Promise<{ more: boolean; created: number }> {
  return inTenant(orm, tenantId, async (scope) => {
    const position = await lockConsumer(scope, WEBHOOK_CONSUMER);
    if (position === undefined) return { more: false, created: 0 };
    const endpoints = await enabledEndpoints(scope);
    const limit = Math.min(
      DISPATCH_PAGE,
      Math.max(50, Math.floor(DISPATCH_DELIVERIES / Math.max(1, endpoints.length))),
    );
    const window = await readEventWindow(scope, {
      prev: position.prev,
      now: position.now ?? undefined,
      afterId: position.afterId ?? 0,
      limit,
    });
    const at = position.prevAt.getTime();
    const deliveries: NewDelivery[] = [];
    for (const event of window.events) {
      const cursor = encodeCursor({ prev: position.prev, now: window.now, afterId: event.id, at });
      for (const endpoint of endpoints) {
        if (!receives(endpoint.events, event.type)) continue;
        deliveries.push({
          id: newId(),
          endpointId: endpoint.id,
          lane: event.conversationId,
          source: 'event',
          type: event.type,
          eventId: event.id,
          cursor,
          messageId: `msg_${event.id}`,
          nextAttemptAt: new Date(),
        });
      }
    }
    const created = await insertDeliveries(scope, deliveries);
    const last = window.events.at(-1);
    const more = window.events.length === limit && last !== undefined;
    await saveConsumer(
      scope,
      WEBHOOK_CONSUMER,
      more ? { prev: position.prev, now: window.now, afterId: last.id } : { prev: window.now },
    );
    return { more, created };
  });
}
