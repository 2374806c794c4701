import { Type } from 'typebox';
import type { TSchema } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';

/** A nullable value, as `anyOf [T, null]` (OpenAPI 3.1 / JSON Schema). */
export function Nullable<T extends TSchema>(schema: T) {
  return Type.Union([schema, Type.Null()]);
}

/**
 * The ids and times the schemas' `examples` share, so that the examples of the OpenAPI document tell one
 * story: tenant Acme; alice's group design-team with bob and carol, her message 42 there (edited, pinned,
 * with bob's reply in its thread) and her picture; the channel general; the tenant's webhook endpoint.
 */
export const EXAMPLE = {
  time: '2026-11-22T10:00:00.000Z',
  tenantId: '019a9b5c-2d1e-7f30-8a41-3b5c6d7e8f90',
  conversationId: '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83',
  channelId: '019a9b5d-4e5f-7a6b-8c7d-9e0f1a2b3c4d',
  messageId: '019a9b70-1c2d-7e3f-8a4b-5c6d7e8f9a0b',
  replyId: '019a9b71-3e4f-7a5b-9c6d-7e8f9a0b1c2d',
  attachmentId: '019a9b72-5a6b-7c8d-9e0f-1a2b3c4d5e6f',
  webhookId: '019a9b68-7d8e-7f9a-8b0c-1d2e3f4a5b6c',
  pushSubscriptionId: '019a9b69-8e9f-7a0b-9c1d-2e3f4a5b6c7d',
} as const;

/** An RFC 3339 UTC timestamp. */
export const Timestamp = Type.String({ format: 'date-time', examples: [EXAMPLE.time] });

/** A UUID that Parley created. */
export const Uuid = Type.String({ format: 'uuid', examples: [EXAMPLE.conversationId] });

/** A tenant-defined JSON object. */
export const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Free-form JSON object, at most 8 KiB serialized',
});

/** The problem+json responses a route can give, by code, for its response schema map. */
export function errorResponses(...codes: ErrorCode[]): Record<number, ReturnType<typeof Type.Ref>> {
  const responses: Record<number, ReturnType<typeof Type.Ref>> = {};
  for (const code of [
    'validation_failed',
    'unauthorized',
    ...codes,
    'internal',
    'unavailable',
  ] as ErrorCode[]) {
    responses[ERROR_CODES[code].status] = Type.Ref('Problem');
  }
  return responses;
}

/** A 204 response with no body. */
export const NoContent = Type.Null({ description: 'No content' });
