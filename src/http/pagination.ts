import { Type } from 'typebox';
import type { TSchema } from 'typebox';
import { AppError } from '../errors.ts';

/** `?limit=`: default 50, at most 200. */
export const LimitSchema = Type.Integer({
  format: 'int32',
  minimum: 1,
  maximum: 200,
  default: 50,
  description: 'Page size',
});
/** The longest keyset cursor: base64url of a short JSON array (encodeCursor). */
const MAX_CURSOR_LENGTH = 512;
/** A `next_cursor` as pages answer it. */
export const NextCursor = Type.String({
  pattern: '^[A-Za-z0-9_-]+$',
  minLength: 1,
  maxLength: MAX_CURSOR_LENGTH,
});
/** `?cursor=`: an opaque `next_cursor` from a previous page. */
export const CursorSchema = Type.String({
  minLength: 1,
  maxLength: MAX_CURSOR_LENGTH,
  description: 'Opaque cursor from next_cursor',
});

/** The `{ data, next_cursor }` envelope of every list, with an example of a page (the OpenAPI document's). */
export function PageSchema<T extends TSchema>(
  title: string,
  item: T,
  example: { data: unknown[]; next_cursor: string | null },
  maxItems = 200,
) {
  return Type.Object(
    {
      data: Type.Array(item, { maxItems }),
      next_cursor: Type.Union([NextCursor, Type.Null()], {
        description: 'Pass as ?cursor= for the next page',
      }),
    },
    { title, examples: [example] },
  );
}

/** An opaque keyset cursor holding the sort key of the last item returned. */
export function encodeCursor(key: string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

const invalidCursor = () =>
  new AppError('validation_failed', 'cursor is not valid', [
    { path: '/querystring/cursor', message: 'is not a cursor returned by this API' },
  ]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A cursor part that must be a UUID (it is compared with a uuid column). */
export function cursorUuid(part: string | undefined): string {
  if (part === undefined || !UUID.test(part)) throw invalidCursor();
  return part;
}

/** A cursor part that must be an RFC 3339 timestamp. */
export function cursorTimestamp(part: string | undefined): string {
  // Only what this API writes: an ISO timestamp with a four-digit year (PostgreSQL's timestamptz takes no
  // `+275760-…`, which JavaScript writes for dates past 9999) that survives a round trip (no 2026-02-30).
  const parsed = part === undefined ? Number.NaN : Date.parse(part);
  if (
    part === undefined ||
    !/^\d{4}-/.test(part) ||
    Number.isNaN(parsed) ||
    new Date(parsed).toISOString() !== part
  )
    throw invalidCursor();
  return part;
}

/** A cursor part that must be a non-negative integer. */
export function cursorInteger(part: string | undefined): number {
  const value = Number(part);
  if (part === undefined || !/^\d{1,15}$/.test(part) || !Number.isSafeInteger(value)) throw invalidCursor();
  return value;
}

/** A cursor part that must be a finite number (a search rank). */
export function cursorNumber(part: string | undefined): number {
  const value = Number(part);
  // Ranks are float4: a value it cannot hold (too large, or too small but not zero) cannot be one.
  const magnitude = Math.abs(value);
  const isFloat4 = magnitude === 0 || (magnitude >= 1.2e-38 && magnitude <= 3.4e38);
  if (part === undefined || part.trim() === '' || !Number.isFinite(value) || !isFloat4) {
    throw invalidCursor();
  }
  return value;
}

/** A cursor part that must be a string (user ids, emoji). */
export function cursorText(part: string | undefined): string {
  if (part === undefined || part.includes('\u0000')) throw invalidCursor();
  return part;
}

/** The sort key inside a cursor; a 400 naming `?cursor` when it was not made by `encodeCursor`. */
export function decodeCursor(cursor: string, arity: number): string[] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity && key.every((part) => typeof part === 'string')) {
      return key;
    }
  } catch {
    // fall through to the validation error
  }
  throw invalidCursor();
}

/** Splits a `limit + 1` fetch into a page and the cursor of the next one. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => string[]) {
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  return { data, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
