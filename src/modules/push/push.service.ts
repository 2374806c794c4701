import { createECDH } from 'node:crypto';
import type { Orm } from '../../db/client.ts';
import { inTenantAsUser } from '../../db/tenant-scope.ts';
import type { TenantContext } from '../../context.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { ensureConsumer } from '../events/event-consumers.repository.ts';
import {
  MAX_SUBSCRIPTIONS_PER_USER,
  type CreatePushSubscriptionBody,
  type PushSubscription,
} from './push.schemas.ts';
import {
  deleteSubscription,
  listSubscriptions,
  trimSubscriptions,
  upsertSubscription,
  type SubscriptionRow,
} from './push.repository.ts';

/** The consumer of the event log that decides who gets a push (and `notification.requested`). */
export const PUSH_CONSUMER = 'push';

export interface PushServiceDeps {
  orm: Orm;
  /** Refuses endpoints that resolve to addresses Parley must not call (src/outbound), with a 400. */
  checkEndpoint: (url: string) => Promise<void>;
  /** The VAPID public key browsers subscribe with (src/vapid-keys.ts). */
  vapidPublicKey: () => Promise<string>;
  /** Tells this process's background work that the push consumer follows a tenant now. */
  follow: (tenantId: string) => void;
}

export function toPushSubscription(row: SubscriptionRow): PushSubscription {
  return {
    id: row.id,
    endpoint: row.endpoint,
    keys: { p256dh: row.p256dh, auth: row.auth },
    created_at: row.createdAt.toISOString(),
  };
}

const notFound = () => new AppError('not_found', 'push subscription not found');

/** A user's Web Push subscriptions (docs/PUSH.md), and the key they subscribe with. */
export function createPushService({ orm, checkEndpoint, vapidPublicKey, follow }: PushServiceDeps) {
  return {
    /**
     * Subscribes the calling user's browser. The same endpoint again (a browser re-subscribing) answers
     * the subscription it has (`created` false); an endpoint of another user is taken over by this one,
     * as the browser now belongs to them.
     */
    async subscribe(ctx: TenantContext, body: CreatePushSubscriptionBody) {
      assertSubscriptionKeys(body.keys);
      await checkEndpoint(body.endpoint);
      const result = await inTenantAsUser(orm, ctx, async (scope, userId) => {
        // From now on, the tenant's log is read for pushes (a no-op when it already is).
        await ensureConsumer(scope, PUSH_CONSUMER);
        const found = await upsertSubscription(scope, {
          id: newId(),
          userId,
          endpoint: body.endpoint,
          p256dh: body.keys.p256dh,
          auth: body.keys.auth,
        });
        if (!found.created && found.row.userId === userId && sameKeys(found.row, body)) return found;
        let made = found;
        if (!found.created) {
          // The endpoint now belongs to this user, or the browser's keys changed: a subscription anew.
          await deleteSubscription(scope, found.row.id);
          made = await upsertSubscription(scope, {
            id: newId(),
            userId,
            endpoint: body.endpoint,
            p256dh: body.keys.p256dh,
            auth: body.keys.auth,
          });
        }
        await trimSubscriptions(scope, userId, MAX_SUBSCRIPTIONS_PER_USER);
        return made;
      });
      follow(ctx.tenantId);
      return { subscription: toPushSubscription(result.row), created: result.created };
    },

    async list(ctx: TenantContext) {
      const rows = await inTenantAsUser(orm, ctx, (scope, userId) => listSubscriptions(scope, userId));
      return { data: rows.map(toPushSubscription) };
    },

    /** Unsubscribes; another user's subscription is not found. */
    async unsubscribe(ctx: TenantContext, id: string) {
      const deleted = await inTenantAsUser(orm, ctx, (scope, userId) =>
        deleteSubscription(scope, id, userId),
      );
      if (!deleted) throw notFound();
    },

    /** The key is the deployment's: the same for every tenant. */
    async vapidPublicKey() {
      return { public_key: await vapidPublicKey() };
    },
  };
}

/**
 * Refuses keys no push can be encrypted to (RFC 8291): p256dh must be a point of P-256, uncompressed (65
 * bytes), auth 16 bytes.
 */
function assertSubscriptionKeys(keys: { p256dh: string; auth: string }): void {
  const refuse = (path: string, message: string) =>
    new AppError('validation_failed', message, [{ path, message }]);
  const publicKey = Buffer.from(keys.p256dh, 'base64url');
  if (publicKey.length !== 65 || publicKey[0] !== 0x04) {
    throw refuse('/body/keys/p256dh', 'p256dh must be an uncompressed P-256 public key (65 bytes)');
  }
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    ecdh.computeSecret(publicKey);
  } catch {
    throw refuse('/body/keys/p256dh', 'p256dh is not a point of the P-256 curve');
  }
  if (Buffer.from(keys.auth, 'base64url').length !== 16) {
    throw refuse('/body/keys/auth', 'auth must be 16 bytes');
  }
}

const sameKeys = (row: SubscriptionRow, body: CreatePushSubscriptionBody) =>
  row.p256dh === body.keys.p256dh && row.auth === body.keys.auth;

export type PushService = ReturnType<typeof createPushService>;
