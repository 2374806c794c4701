import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { newId } from '../../ids.ts';
import { encodeCursor } from '../events/events.cursor.ts';
import { lockConsumer, saveConsumer } from '../events/event-consumers.repository.ts';
import { readEventWindow } from '../events/events.repository.ts';
import { enabledEndpoints, insertDeliveries, type NewDelivery } from './webhooks.repository.ts';
import { WEBHOOK_CONSUMER } from './webhooks.service.ts';

/** Events read from the log per step: one short transaction each. */
export const DISPATCH_PAGE = 500;

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
    const window = await readEventWindow(scope, {
      prev: position.prev,
      now: position.now ?? undefined,
      afterId: position.afterId ?? 0,
      limit: DISPATCH_PAGE,
    });
    const endpoints = window.events.length === 0 ? [] : await enabledEndpoints(scope);
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
    const more = window.events.length === DISPATCH_PAGE && last !== undefined;
    await saveConsumer(
      scope,
      WEBHOOK_CONSUMER,
      more ? { prev: position.prev, now: window.now, afterId: last.id } : { prev: window.now },
    );
    return { more, created };
  });
}
