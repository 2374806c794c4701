// The shape of an object key, checked by every storage backend before it touches a path or a bucket, so that a
// key can never name a file outside the disk backend's root and means the same object on either backend.

/** The longest key (in characters, all of them ASCII) either backend accepts: S3's limit is 1,024 bytes. */
export const MAX_OBJECT_KEY_LENGTH = 1024;

const KEY_CHARACTERS = /^[A-Za-z0-9._/-]*$/;

/** A key or prefix that no backend will use. */
export class InvalidObjectKeyError extends Error {
  override readonly name = 'InvalidObjectKeyError';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`invalid object key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** Why `key` is not a valid key, or undefined when it is one. */
function keyProblem(key: string): string | undefined {
  if (key === '') return 'it is empty';
  if (key.length > MAX_OBJECT_KEY_LENGTH) return `it is longer than ${MAX_OBJECT_KEY_LENGTH} characters`;
  if (!KEY_CHARACTERS.test(key)) return 'it has characters other than [A-Za-z0-9._/-]';
  if (key.startsWith('/')) return 'it is absolute';
  return segmentProblem(key.split('/'));
}

/** Why these `/`-separated segments cannot be those of a key: empty, `.` and `..` segments name no object. */
function segmentProblem(segments: readonly string[]): string | undefined {
  for (const segment of segments) {
    if (segment === '') return 'it has an empty segment';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
  }
  return undefined;
}

/** Whether `key` is a valid key: what `list` uses to pass over files it did not write. */
export function isObjectKey(key: string): boolean {
  return keyProblem(key) === undefined;
}

/**
 * Throws `InvalidObjectKeyError` unless `key` is non-empty, relative, made of [A-Za-z0-9._/-] only, and has no
 * empty, `.` or `..` segment: what both backends require before using a key.
 */
export function assertObjectKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new InvalidObjectKeyError(key, problem);
}

/**
 * Throws `InvalidObjectKeyError` unless `prefix` could begin a key: empty (every object), or the start of a valid
 * key, possibly ending in `/` (`tenant/`) or in the middle of a segment (`tenant/01`).
 */
export function assertObjectKeyPrefix(prefix: string): void {
  if (prefix === '') return;
  if (prefix.length > MAX_OBJECT_KEY_LENGTH) {
    throw new InvalidObjectKeyError(prefix, `it is longer than ${MAX_OBJECT_KEY_LENGTH} characters`);
  }
  if (!KEY_CHARACTERS.test(prefix)) {
    throw new InvalidObjectKeyError(prefix, 'it has characters other than [A-Za-z0-9._/-]');
  }
  if (prefix.startsWith('/')) throw new InvalidObjectKeyError(prefix, 'it is absolute');
  const segments = prefix.split('/');
  // The last segment may be cut short (`a/b/` leaves an empty one, `a/.` may go on as `a/.x`), but no segment
  // before it may be empty, `.` or `..`; `..` as the last one cannot start a valid segment either.
  const problem =
    segmentProblem(segments.slice(0, -1)) ?? (segments.at(-1) === '..' ? 'it has a ".." segment' : undefined);
  if (problem !== undefined) throw new InvalidObjectKeyError(prefix, problem);
}
