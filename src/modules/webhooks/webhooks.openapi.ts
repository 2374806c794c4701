import { Type, type TSchema } from 'typebox';
import { Nullable, Timestamp, Uuid } from '../../http/schemas.ts';
import { LoggedEvent } from '../events/events.schemas.ts';

/** The body of a `webhook.disabled` notice: which endpoint, and since when it failed. */
export const WebhookDisabledData = Type.Object({
  webhook_id: Uuid,
  url: Type.String(),
  reason: Type.Literal('failing'),
  failing_since: Nullable(Timestamp),
  disabled_at: Timestamp,
});

/** The body of a `webhook.test` delivery. */
export const WebhookTestData = Type.Object({ webhook_id: Uuid, message: Type.String() });

/** The Standard Webhooks envelope of one event type: `{type, timestamp, data}`. */
const envelope = (type: string, data: TSchema) =>
  Type.Object({
    type: Type.Literal(type),
    timestamp: Type.String({ format: 'date-time', description: 'When the event was logged' }),
    data,
  });

const HEADERS = [
  [
    'webhook-id',
    'msg_<id>: the same on every attempt, retry and replay of one event; skip ids already handled',
  ],
  ['webhook-timestamp', 'The attempt, in seconds since the epoch; refuse one far from your clock'],
  [
    'webhook-signature',
    'v1,<base64 HMAC-SHA256 of "id.timestamp.body"> per live secret, space-separated (two for 24 h after a rotation)',
  ],
].map(([name, description]) => ({
  name,
  in: 'header',
  required: true,
  description,
  schema: { type: 'string' },
}));

/** A schema as plain JSON (what the OpenAPI document holds). */
const plain = (schema: TSchema): unknown => JSON.parse(JSON.stringify(schema));

/**
 * The OpenAPI 3.1 `webhooks` of the document: one per event type a tenant backend can receive, its body
 * made from the event contract (`data` is the event as a socket carries it), so the document and the
 * deliveries cannot disagree. docs/WEBHOOKS.md says the rest.
 */
export function webhookOperations(): Record<string, unknown> {
  const bodies: [string, TSchema][] = [
    ...LoggedEvent.anyOf.map((member): [string, TSchema] => [member.properties.type.const, member]),
    ['webhook.test', WebhookTestData],
    ['webhook.disabled', WebhookDisabledData],
  ];
  return Object.fromEntries(
    bodies.map(([type, data]) => [
      type,
      {
        post: {
          operationId: `webhook_${type.replace('.', '_')}`,
          tags: ['webhooks'],
          summary: `The ${type} event, POSTed to an endpoint that receives it`,
          parameters: HEADERS,
          requestBody: {
            required: true,
            content: { 'application/json': { schema: plain(envelope(type, data)) } },
          },
          responses: {
            '200': { description: 'Received (any 2xx within 15 s is success; anything else is retried)' },
          },
        },
      },
    ]),
  );
}
