import type { ByteRange } from './object-storage.ts';

/**
 * Throws a RangeError unless `range` is a well-formed inclusive range (whole numbers, 0 <= start <= end), so
 * that neither backend turns a malformed range into a whole-object read or a server error.
 */
export function assertByteRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}
