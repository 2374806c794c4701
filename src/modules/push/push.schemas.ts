import { Type, type Static } from 'typebox';
import { EXAMPLE, Timestamp, Uuid } from '../../http/schemas.ts';

/**
 * Subscriptions kept per user: a new one beyond it removes the oldest. Browsers drop subscriptions without
 * telling, so old ones pile up; and each is a request per message, to a URL the user chose.
 */
export const MAX_SUBSCRIPTIONS_PER_USER = 20;

const EXAMPLE_ENDPOINT = 'https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bH…';
const EXAMPLE_KEYS = {
  p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
  auth: 'tBHItJI5svbpez7KI4CCXg',
};
/** Alice's browser, as the subscription list and her export show it. */
export const PUSH_SUBSCRIPTION_EXAMPLE = {
  id: EXAMPLE.pushSubscriptionId,
  endpoint: EXAMPLE_ENDPOINT,
  keys: EXAMPLE_KEYS,
  created_at: '2026-12-07T10:00:00.000Z',
};

/**
 * A base64url value (RFC 4648 §5) of `bytes` bytes, padding allowed, as browsers give a subscription's keys:
 * its length is in the pattern, so the pattern alone says what a valid value is (and a generator of values
 * from the schema, like the fuzzer's, makes valid ones).
 */
const Base64Url = (description: string, bytes: number) => {
  const chars = Math.ceil((bytes * 4) / 3);
  const padding = (4 - (chars % 4)) % 4;
  return Type.String({
    pattern: `^[A-Za-z0-9_-]{${chars}}${padding === 0 ? '' : `(={${padding}})?`}$`,
    minLength: chars,
    maxLength: chars + padding,
    description,
  });
};

const Endpoint = Type.String({
  minLength: 1,
  maxLength: 2048,
  pattern: '^https?://',
  description:
    "The push service's URL for this browser (PushSubscription.endpoint); private and loopback addresses " +
    'are refused unless the operator allows them',
  examples: [EXAMPLE_ENDPOINT],
});

const Keys = Type.Object(
  {
    p256dh: Base64Url("The browser's P-256 public key (65 bytes, uncompressed), base64url", 65),
    auth: Base64Url("The browser's 16-byte authentication secret, base64url", 16),
  },
  { additionalProperties: false },
);

/** The body of `POST /v1/me/push-subscriptions`: what `PushSubscription.toJSON()` gives, minus its extras. */
export const CreatePushSubscriptionBody = Type.Object(
  { endpoint: Endpoint, keys: Keys },
  {
    title: 'CreatePushSubscriptionBody',
    additionalProperties: false,
    examples: [{ endpoint: EXAMPLE_ENDPOINT, keys: EXAMPLE_KEYS }],
  },
);
export type CreatePushSubscriptionBody = Static<typeof CreatePushSubscriptionBody>;

export const PushSubscription = Type.Object(
  {
    id: Uuid,
    endpoint: Endpoint,
    keys: Keys,
    created_at: Timestamp,
  },
  {
    title: 'PushSubscription',
    examples: [PUSH_SUBSCRIPTION_EXAMPLE],
  },
);
export type PushSubscription = Static<typeof PushSubscription>;

export const PushSubscriptionList = Type.Object(
  {
    data: Type.Array(PushSubscription, {
      maxItems: MAX_SUBSCRIPTIONS_PER_USER,
      description: "The caller's subscriptions, newest first",
    }),
  },
  { title: 'PushSubscriptionList', examples: [{ data: [PUSH_SUBSCRIPTION_EXAMPLE] }] },
);

export const PushSubscriptionParams = Type.Object({ subscription_id: Uuid });

export const VapidPublicKey = Type.Object(
  {
    public_key: Type.String({
      pattern: '^[A-Za-z0-9_-]{87}$',
      minLength: 87,
      maxLength: 87,
      description:
        "The server's VAPID public key (base64url, uncompressed P-256): the applicationServerKey to pass " +
        'to PushManager.subscribe()',
    }),
  },
  {
    title: 'VapidPublicKey',
    examples: [
      {
        public_key: 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U',
      },
    ],
  },
);

/**
 * What a Web Push message carries, encrypted to the subscriber (RFC 8291): JSON the service worker's
 * `push` event reads (`event.data.json()`).
 */
export interface PushPayload {
  type: 'message.created';
  conversation_id: string;
  message_id: string;
  sender_id: string;
  /** The start of the text; absent when the tenant turned previews off or the message is gone. */
  preview?: string;
}
