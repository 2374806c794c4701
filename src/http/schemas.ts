import { Type } from 'typebox';
import type { TNumberOptions as IntegerOptions, TSchema, TStringOptions as StringOptions } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';

/** A nullable value, as `anyOf [T, null]` (OpenAPI 3.1 / JSON Schema). */
export function Nullable<T extends TSchema>(schema: T, options: { description?: string } = {}) {
  return Type.Union([schema, Type.Null()], options);
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

// Every string, integer and array of the API is bounded, in requests and in answers alike (the OWASP
// ruleset of docs/API.md, "The OpenAPI document"): a client can size its buffers and columns from the
// document, and the test suite's response check holds the server to what it says.

/**
 * The longest RFC 3339 time: nanoseconds and an offset (`2026-11-22T10:00:00.123456789+05:30`). Parley
 * writes 24 characters (`2026-11-22T10:00:00.000Z`).
 */
const MAX_TIMESTAMP_LENGTH = 35;

/** An RFC 3339 timestamp (UTC in every answer). */
export function timestamp(options: StringOptions = {}) {
  return Type.String({
    format: 'date-time',
    maxLength: MAX_TIMESTAMP_LENGTH,
    examples: [EXAMPLE.time],
    ...options,
  });
}
export const Timestamp = timestamp();

/** A UUID that Parley created. */
export function uuid(options: StringOptions = {}) {
  return Type.String({
    format: 'uuid',
    minLength: 36,
    maxLength: 36,
    examples: [EXAMPLE.conversationId],
    ...options,
  });
}
export const Uuid = uuid();

/** A text a person wrote (a name, a message): any characters PostgreSQL stores, at most `maxLength`. */
export function text(maxLength: number, options: StringOptions = {}) {
  return Type.String({ maxLength, ...options });
}

/** A lowercase hex SHA-256 digest. */
export const Sha256Hex = Type.String({
  pattern: '^[0-9a-f]{64}$',
  minLength: 64,
  maxLength: 64,
  description: 'SHA-256, lowercase hex',
});

/** A media type as Parley stores it (`type/subtype`, RFC 6838's characters, parameters dropped). */
export const MediaTypeName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$',
  maxLength: 255,
  examples: ['image/webp'],
});

/**
 * A count, size or position: a whole number both JavaScript and PostgreSQL's `bigint` hold exactly.
 * Declared `int64`, so a client in a typed language reads it as a 64-bit integer.
 */
export function count(options: IntegerOptions = {}) {
  return Type.Integer({ format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...options });
}

/** A small whole number within `minimum`..`maximum`, which must fit 32 bits. */
export function int32(minimum: number, maximum: number, options: IntegerOptions = {}) {
  if (minimum < -(2 ** 31) || maximum > 2 ** 31 - 1) throw new Error('int32: out of 32-bit range');
  return Type.Integer({ format: 'int32', minimum, maximum, ...options });
}

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
