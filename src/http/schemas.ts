import { Type } from 'typebox';
import type { TSchema } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';

/** A nullable value, as `anyOf [T, null]` (OpenAPI 3.1 / JSON Schema). */
export function Nullable<T extends TSchema>(schema: T) {
  return Type.Union([schema, Type.Null()]);
}

/** An RFC 3339 UTC timestamp. */
export const Timestamp = Type.String({ format: 'date-time', examples: ['2026-11-22T10:00:00.000Z'] });

/** A UUID that Parley created. */
export const Uuid = Type.String({ format: 'uuid', examples: ['019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83'] });

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
