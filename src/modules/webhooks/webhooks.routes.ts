import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  CreateWebhookBody,
  DeliveryPage,
  DeliveryParams,
  ListDeliveriesQuery,
  ListWebhooksQuery,
  PatchWebhookBody,
  ReplayBody,
  ReplayResult,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookPage,
  WebhookParams,
} from './webhooks.schemas.ts';
import type { WebhooksService } from './webhooks.service.ts';

const tags = ['webhooks'];
const backendOnly: Array<Record<string, string[]>> = [{ apiKey: [] }];

/** /v1/webhooks: a tenant backend's endpoints, their deliveries, retries and replays (docs/WEBHOOKS.md). */
export function registerWebhookRoutes(app: App, webhooks: WebhooksService): void {
  app.post('/v1/webhooks', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'createWebhook',
      tags,
      security: backendOnly,
      summary: 'Create a webhook endpoint',
      description:
        'The answer holds the signing secret, shown this once. The url must resolve to public addresses ' +
        '(unless the operator allows private ones); events are the types to receive, or ["*"].',
      body: CreateWebhookBody,
      response: { 201: WebhookEndpointWithSecret, ...errorResponses('forbidden') },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await webhooks.create(tenantContext(request), request.body)),
  });

  app.get('/v1/webhooks', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'listWebhooks',
      description: "The tenant's webhook endpoints, newest first, without their secrets. An api key only.",
      tags,
      security: backendOnly,
      summary: 'List webhook endpoints, newest first',
      querystring: ListWebhooksQuery,
      response: { 200: WebhookPage, ...errorResponses('forbidden') },
    },
    handler: (request) =>
      webhooks.list(tenantContext(request), {
        limit: request.query.limit ?? 50,
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
      }),
  });

  app.get('/v1/webhooks/:webhook_id', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'getWebhook',
      description:
        'One webhook endpoint: url, event filter, state (enabled, disabled and why), without its secret. An api key only.',
      tags,
      security: backendOnly,
      summary: 'Read a webhook endpoint (without its secret)',
      params: WebhookParams,
      response: { 200: WebhookEndpoint, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => webhooks.get(tenantContext(request), request.params.webhook_id),
  });

  app.patch('/v1/webhooks/:webhook_id', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'updateWebhook',
      tags,
      security: backendOnly,
      summary: 'Change, disable or enable a webhook endpoint',
      description:
        'enabled: false stops its deliveries (they wait); enabled: true sends what waited, in order.',
      params: WebhookParams,
      body: PatchWebhookBody,
      response: { 200: WebhookEndpoint, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => webhooks.update(tenantContext(request), request.params.webhook_id, request.body),
  });

  app.delete('/v1/webhooks/:webhook_id', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'deleteWebhook',
      description:
        'Deletes the endpoint and its delivery history; nothing more is sent to it, deliveries in flight included. An api key only.',
      tags,
      security: backendOnly,
      summary: 'Delete a webhook endpoint and its deliveries',
      params: WebhookParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) => {
      await webhooks.remove(tenantContext(request), request.params.webhook_id);
      return reply.code(204).send(null);
    },
  });

  app.post('/v1/webhooks/:webhook_id/rotate-secret', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'rotateWebhookSecret',
      tags,
      security: backendOnly,
      summary: 'Rotate the signing secret',
      description:
        'The answer holds the new secret, shown this once. For 24 hours deliveries carry a signature by ' +
        'the old secret too, so receivers can switch without missing one.',
      params: WebhookParams,
      response: { 200: WebhookEndpointWithSecret, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => webhooks.rotateSecret(tenantContext(request), request.params.webhook_id),
  });

  app.post('/v1/webhooks/:webhook_id/test', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'testWebhook',
      description:
        "Queues a `webhook.test` delivery to the endpoint now (202), signed like every other: for checking a receiver's signature verification. Watch it in the deliveries list. An api key only.",
      tags,
      security: backendOnly,
      summary: 'Send a webhook.test delivery now',
      params: WebhookParams,
      response: { 202: WebhookDelivery, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) =>
      reply.code(202).send(await webhooks.sendTest(tenantContext(request), request.params.webhook_id)),
  });

  app.get('/v1/webhooks/:webhook_id/deliveries', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'listWebhookDeliveries',
      description:
        "The endpoint's deliveries, newest first: event, status (`pending`, `retrying`, `succeeded`, `failed`), attempts, last response code and error. Filter by `status`. An api key only.",
      tags,
      security: backendOnly,
      summary: "List an endpoint's deliveries, newest first",
      params: WebhookParams,
      querystring: ListDeliveriesQuery,
      response: { 200: DeliveryPage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      webhooks.listDeliveries(tenantContext(request), request.params.webhook_id, {
        limit: request.query.limit ?? 50,
        ...(request.query.cursor === undefined ? {} : { cursor: request.query.cursor }),
        ...(request.query.status === undefined ? {} : { status: request.query.status }),
      }),
  });

  app.post('/v1/webhooks/:webhook_id/deliveries/:delivery_id/retry', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'retryWebhookDelivery',
      description:
        'Sends a delivery again from the start of the retry schedule, keeping its `webhook-id` so a receiver can drop a duplicate (202). An api key only.',
      tags,
      security: backendOnly,
      summary: 'Send a delivery again, from the start of the retry schedule',
      params: DeliveryParams,
      response: { 202: WebhookDelivery, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) =>
      reply
        .code(202)
        .send(
          await webhooks.retryDelivery(
            tenantContext(request),
            request.params.webhook_id,
            request.params.delivery_id,
          ),
        ),
  });

  app.post('/v1/webhooks/:webhook_id/replay', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'replayWebhookDeliveries',
      tags,
      security: backendOnly,
      summary: 'Send again every event since a time',
      description:
        'Each event the endpoint receives, logged since `since` (and still in the log), is delivered ' +
        'again with its original webhook-id, in order per conversation.',
      params: WebhookParams,
      body: ReplayBody,
      response: { 202: ReplayResult, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) =>
      reply
        .code(202)
        .send(await webhooks.replay(tenantContext(request), request.params.webhook_id, request.body.since)),
  });
}
