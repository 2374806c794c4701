import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { newId } from '../../ids.ts';
import { lockConsumer, saveConsumer } from '../events/event-consumers.repository.ts';
import { readEventWindow } from '../events/events.repository.ts';
import type { StoredEvent } from '../events/events.schemas.ts';
import { DISPATCH_PAGE, receives } from '../webhooks/webhook-dispatcher.ts';
import { enabledEndpoints, insertDeliveries, type NewDelivery } from '../webhooks/webhooks.repository.ts';
import {
  hasSubscriptions,
  insertPushDeliveries,
  pushCandidates,
  subscriptionsOf,
} from './push.repository.ts';
import { PUSH_CONSUMER } from './push.service.ts';

/**
 * Whether a user has a socket open now (the hub's presence, src/realtime/hub.ts): such a user sees the
 * message there, and gets no push. Exact for this process's sockets; other processes' are known only
 * through the bus (with Redis across processes; see docs/PUSH.md).
 */
export type IsOnline = (tenantId: string, userId: string) => boolean;

type MessageCreated = Extract<StoredEvent, { type: 'message.created' }>;

/** The webhook-only event type that carries the push decision to a tenant's backend. */
export const NOTIFICATION_TYPE = 'notification.requested';

/**
 * One step of following a tenant's log for push (docs/PUSH.md), in one transaction like the webhook
 * dispatcher's: lock the position, read the next page, and for each new message decide who should hear
 * of it (members but the sender, not muted, mentioned or in a direct or group conversation, and not
 * online); record a push per subscription of theirs and a `notification.requested` delivery per endpoint
 * that receives it, and move the position past the page. Both commit with the position, or neither.
 */
export async function dispatchPush(
  orm: Orm,
  tenantId: string,
  isOnline: IsOnline,
): Promise<{ more: boolean; created: number }> {
  return inTenant(orm, tenantId, async (scope) => {
    const position = await lockConsumer(scope, PUSH_CONSUMER);
    if (position === undefined) return { more: false, created: 0 };
    const window = await readEventWindow(scope, {
      prev: position.prev,
      now: position.now ?? undefined,
      afterId: position.afterId ?? 0,
      limit: DISPATCH_PAGE,
    });
    const messages = window.events.filter(
      (event): event is MessageCreated => event.type === 'message.created' && !event.isPrivate,
    );
    let created = 0;
    if (messages.length > 0) {
      const endpoints = (await enabledEndpoints(scope)).filter((endpoint) =>
        receives(endpoint.events, NOTIFICATION_TYPE),
      );
      const pushesWanted = await hasSubscriptions(scope);
      // Keyed by subscription and conversation: a page's later message replaces an earlier one.
      const pushes = new Map<
        string,
        { id: string; subscriptionId: string; conversationId: string; eventId: number }
      >();
      const notices: NewDelivery[] = [];
      for (const event of messages) {
        const message = event.data;
        // Deleted since (its event was redacted): nothing to tell.
        if (message.text === null) continue;
        const candidates = await pushCandidates(scope, {
          conversationId: event.conversationId,
          senderId: message.sender_id,
          mentions: message.mentions,
        });
        const recipients = candidates.filter((userId) => !isOnline(tenantId, userId));
        if (recipients.length === 0) continue;
        if (pushesWanted) {
          for (const subscription of await subscriptionsOf(scope, recipients)) {
            pushes.set(`${subscription.id} ${event.conversationId}`, {
              id: newId(),
              subscriptionId: subscription.id,
              conversationId: event.conversationId,
              eventId: event.id,
            });
          }
        }
        for (const endpoint of endpoints) {
          const id = newId();
          notices.push({
            id,
            endpointId: endpoint.id,
            lane: event.conversationId,
            source: 'notification',
            type: NOTIFICATION_TYPE,
            eventId: event.id,
            // The preview is added when it is sent, from the event as it is then (docs/PUSH.md).
            payload: {
              type: NOTIFICATION_TYPE,
              timestamp: event.createdAt.toISOString(),
              data: {
                conversation_id: event.conversationId,
                message_id: message.id,
                sender_id: message.sender_id,
                recipients,
              },
            },
            messageId: `msg_${id}`,
            nextAttemptAt: new Date(),
          });
        }
      }
      created += await insertPushDeliveries(scope, [...pushes.values()]);
      created += await insertDeliveries(scope, notices);
    }
    const last = window.events.at(-1);
    const more = window.events.length === DISPATCH_PAGE && last !== undefined;
    await saveConsumer(
      scope,
      PUSH_CONSUMER,
      more ? { prev: position.prev, now: window.now, afterId: last.id } : { prev: window.now },
    );
    return { more, created };
  });
}
