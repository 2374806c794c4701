import { Type, type Static } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import { count, EXAMPLE, int32, Nullable, text, Timestamp, Uuid } from '../../http/schemas.ts';
import { LoggedEvent } from '../events/events.schemas.ts';

/** The types of the log an endpoint can subscribe to: every logged event, by the event contract. */
export const LOGGED_EVENT_TYPES: readonly string[] = LoggedEvent.anyOf.map(
  (member) => member.properties.type.const,
);

/**
 * Event types that exist only as webhooks: a test, the notice that an endpoint was disabled, and the push
 * decision for tenants that push through their own services (APNs, FCM; docs/PUSH.md).
 */
export const WEBHOOK_ONLY_TYPES = ['webhook.test', 'webhook.disabled', 'notification.requested'] as const;

/** What `events` may name: a logged type, a webhook-only type, or `*` for all of them. */
export const SUBSCRIBABLE_TYPES: readonly string[] = ['*', ...LOGGED_EVENT_TYPES, ...WEBHOOK_ONLY_TYPES];

const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  pattern: '^https?://',
  description: 'An http(s) URL of the tenant backend; private and loopback addresses are refused',
  examples: ['https://backend.example.com/parley/webhooks'],
});

const EventType = Type.Unsafe<string>({ type: 'string', enum: [...SUBSCRIBABLE_TYPES] });

const EventTypes = Type.Array(EventType, {
  minItems: 1,
  maxItems: 32,
  uniqueItems: true,
  description: 'Event types to receive, or ["*"] for all',
});

const Description = Type.String({ minLength: 1, maxLength: 500 });

/** The longest `last_error` a delivery shows: a peer's error is cut there. */
export const MAX_DELIVERY_ERROR_LENGTH = 1000;

/** The id of a Standard Webhooks message (`msg_` and the event's or delivery's id). */
const WebhookMessageId = Type.String({ pattern: '^msg_[A-Za-z0-9_-]+$', maxLength: 64 });

const WEBHOOK_EXAMPLE = {
  id: EXAMPLE.webhookId,
  url: 'https://backend.example.com/parley/webhooks',
  events: ['message.created'],
  description: null,
  enabled: true,
  disabled_reason: null,
  disabled_at: null,
  failing_since: null,
  created_at: '2026-12-07T10:00:00.000Z',
  updated_at: '2026-12-07T10:00:00.000Z',
};
const DELIVERY_EXAMPLE = {
  id: '019a9b6e-9000-7c3e-9d41-5b2f0c7a1e83',
  webhook_id: EXAMPLE.webhookId,
  webhook_message_id: 'msg_1042',
  type: 'message.created',
  source: 'event',
  conversation_id: EXAMPLE.conversationId,
  status: 'delivered',
  attempts: 1,
  next_attempt_at: null,
  last_attempt_at: '2026-12-07T10:00:01.000Z',
  last_status_code: 204,
  last_error: null,
  created_at: '2026-12-07T10:00:00.000Z',
};

export const WebhookEndpoint = Type.Object(
  {
    id: Uuid,
    url: Url,
    events: EventTypes,
    description: Nullable(Description),
    enabled: Type.Boolean(),
    disabled_reason: Nullable(
      Type.Union([Type.Literal('manual'), Type.Literal('failing')], {
        description: '`failing`: every delivery failed for five days',
      }),
    ),
    disabled_at: Nullable(Timestamp),
    failing_since: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  {
    title: 'WebhookEndpoint',
    examples: [WEBHOOK_EXAMPLE],
  },
);
export type WebhookEndpoint = Static<typeof WebhookEndpoint>;

/** An endpoint with its signing secret: only in the answers that create or rotate it. */
export const WebhookEndpointWithSecret = Type.Object(
  {
    ...WebhookEndpoint.properties,
    secret: Type.String({
      pattern: '^whsec_[A-Za-z0-9+/]{43}=$',
      maxLength: 50,
      description: 'The signing secret (whsec_…), shown once: keep it to verify webhook-signature',
    }),
  },
  {
    title: 'WebhookEndpointWithSecret',
    examples: [{ ...WEBHOOK_EXAMPLE, secret: 'whsec_Hym5hNLSB7vEzyCuDjJebRiUz3kUvBObcv9JghIpLOM=' }],
  },
);

export const WebhookParams = Type.Object({ webhook_id: Uuid });
export const DeliveryParams = Type.Object({ webhook_id: Uuid, delivery_id: Uuid });

export const CreateWebhookBody = Type.Object(
  { url: Url, events: EventTypes, description: Type.Optional(Description) },
  {
    title: 'CreateWebhookBody',
    additionalProperties: false,
    examples: [{ url: 'https://backend.example.com/parley/webhooks', events: ['message.created'] }],
  },
);
export type CreateWebhookBody = Static<typeof CreateWebhookBody>;

export const PatchWebhookBody = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(EventTypes),
    description: Type.Optional(Nullable(Description)),
    enabled: Type.Optional(Type.Boolean({ description: 'false disables it; true enables it again' })),
  },
  {
    title: 'PatchWebhookBody',
    additionalProperties: false,
    minProperties: 1,
    examples: [{ enabled: false }],
  },
);
export type PatchWebhookBody = Static<typeof PatchWebhookBody>;

export const ListWebhooksQuery = Type.Object(
  { limit: Type.Optional(LimitSchema), cursor: Type.Optional(CursorSchema) },
  { additionalProperties: false },
);
export const WebhookPage = PageSchema('WebhookPage', WebhookEndpoint, {
  data: [WEBHOOK_EXAMPLE],
  next_cursor: null,
});

export const DeliveryStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivered'),
  Type.Literal('failed'),
]);
export type DeliveryStatus = Static<typeof DeliveryStatus>;

export const WebhookDelivery = Type.Object(
  {
    id: Uuid,
    webhook_id: Uuid,
    webhook_message_id: Type.String({
      ...WebhookMessageId,
      description: 'The webhook-id header: the same on every attempt',
    }),
    type: Type.Unsafe<string>({ ...EventType, description: 'The event type' }),
    source: Type.Union(
      [
        Type.Literal('event'),
        Type.Literal('replay'),
        Type.Literal('test'),
        Type.Literal('notice'),
        Type.Literal('notification'),
      ],
      {
        description:
          'What made it: an event of the log, a replay, a test, a notice from Parley, or a push decision ' +
          '(notification.requested)',
      },
    ),
    conversation_id: Nullable(Uuid),
    status: DeliveryStatus,
    attempts: count(),
    next_attempt_at: Nullable(Timestamp),
    last_attempt_at: Nullable(Timestamp),
    last_status_code: Nullable(int32(100, 999)),
    last_error: Nullable(text(MAX_DELIVERY_ERROR_LENGTH)),
    created_at: Timestamp,
  },
  {
    title: 'WebhookDelivery',
    examples: [DELIVERY_EXAMPLE],
  },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const ListDeliveriesQuery = Type.Object(
  {
    status: Type.Optional(DeliveryStatus),
    limit: Type.Optional(LimitSchema),
    cursor: Type.Optional(CursorSchema),
  },
  { additionalProperties: false },
);
export const DeliveryPage = PageSchema('DeliveryPage', WebhookDelivery, {
  data: [DELIVERY_EXAMPLE],
  next_cursor: null,
});

export const ReplayBody = Type.Object(
  { since: Timestamp },
  { title: 'ReplayBody', additionalProperties: false, examples: [{ since: '2026-12-07T09:00:00.000Z' }] },
);

export const ReplayResult = Type.Object(
  {
    replayed: count({ description: 'How many deliveries the replay created' }),
  },
  { title: 'ReplayResult', examples: [{ replayed: 12 }] },
);
