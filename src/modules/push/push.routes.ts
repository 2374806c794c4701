import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  CreatePushSubscriptionBody,
  PushSubscription,
  PushSubscriptionList,
  PushSubscriptionParams,
  VapidPublicKey,
} from './push.schemas.ts';
import type { PushService } from './push.service.ts';

const tags = ['push'];
const tenantCallers: Array<Record<string, string[]>> = [{ apiKey: [] }, { userToken: [] }];
const asUser = { auth: 'user' } as const;

/** /v1/me/push-subscriptions and /v1/push/vapid-public-key: Web Push to offline users (docs/PUSH.md). */
export function registerPushRoutes(app: App, push: PushService): void {
  app.post('/v1/me/push-subscriptions', {
    config: asUser,
    schema: {
      operationId: 'createPushSubscription',
      tags,
      security: tenantCallers,
      summary: "Subscribe the caller's browser to Web Push",
      description:
        'The body is what PushSubscription.toJSON() gives (its expirationTime left out). The same endpoint ' +
        'again answers 200 with the subscription it has. The endpoint must resolve to public addresses ' +
        '(unless the operator allows private ones).',
      body: CreatePushSubscriptionBody,
      response: { 200: PushSubscription, 201: PushSubscription, ...errorResponses('forbidden') },
    },
    handler: async (request, reply) => {
      const { subscription, created } = await push.subscribe(tenantContext(request), request.body);
      return reply.code(created ? 201 : 200).send(subscription);
    },
  });

  app.get('/v1/me/push-subscriptions', {
    config: asUser,
    schema: {
      operationId: 'listPushSubscriptions',
      description: "The Web Push subscriptions of the caller's browsers, newest first.",
      tags,
      security: tenantCallers,
      summary: "The caller's Web Push subscriptions, newest first",
      response: { 200: PushSubscriptionList, ...errorResponses('forbidden') },
    },
    handler: (request) => push.list(tenantContext(request)),
  });

  app.delete('/v1/me/push-subscriptions/:subscription_id', {
    config: asUser,
    schema: {
      operationId: 'deletePushSubscription',
      description:
        "Removes one of the caller's Web Push subscriptions: that browser receives no more pushes. Another user's subscription is 404.",
      tags,
      security: tenantCallers,
      summary: 'Unsubscribe a browser of the caller',
      params: PushSubscriptionParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) => {
      await push.unsubscribe(tenantContext(request), request.params.subscription_id);
      return reply.code(204).send(null);
    },
  });

  app.get('/v1/push/vapid-public-key', {
    config: { auth: 'tenant' },
    schema: {
      operationId: 'getVapidPublicKey',
      tags,
      security: tenantCallers,
      summary: "The server's VAPID public key",
      description: 'Pass it to PushManager.subscribe() as applicationServerKey.',
      response: { 200: VapidPublicKey, ...errorResponses() },
    },
    handler: () => push.vapidPublicKey(),
  });
}
