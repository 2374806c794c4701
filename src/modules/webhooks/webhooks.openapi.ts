import { Type, type TSchema } from 'typebox';
import { Nullable, text, timestamp, Timestamp, Uuid } from '../../http/schemas.ts';
import { LoggedEvent } from '../events/events.schemas.ts';

/** The body of a `webhook.disabled` notice: which endpoint, and since when it failed. */
export const WebhookDisabledData = Type.Object({
  webhook_id: Uuid,
  url: Type.String({ maxLength: 2048, pattern: '^https?://' }),
  reason: Type.Literal('failing'),
  failing_since: Nullable(Timestamp),
  disabled_at: Timestamp,
});

/** The body of a `webhook.test` delivery. */
export const WebhookTestData = Type.Object({ webhook_id: Uuid, message: text(200) });

/** The Standard Webhooks envelope of one event type: `{type, timestamp, data}`. */
const envelope = (type: string, data: TSchema) =>
  Type.Object({
    type: Type.Literal(type),
    timestamp: timestamp({ description: 'When the event was logged' }),
    data,
  });

const HEADERS = [
  {
    name: 'webhook-id',
    description:
      'msg_<id>: the same on every attempt, retry and replay of one event; skip ids already handled',
    schema: { type: 'string', pattern: '^msg_[A-Za-z0-9_-]+$', maxLength: 64 },
  },
  {
    name: 'webhook-timestamp',
    description: 'The attempt, in seconds since the epoch; refuse one far from your clock',
    schema: { type: 'string', pattern: '^[0-9]{1,12}$', maxLength: 12 },
  },
  {
    name: 'webhook-signature',
    description:
      'v1,<base64 HMAC-SHA256 of "id.timestamp.body"> per live secret, space-separated (two for 24 h after a rotation)',
    schema: { type: 'string', pattern: '^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$', maxLength: 512 },
  },
].map((header) => ({ ...header, in: 'header', required: true }));

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
