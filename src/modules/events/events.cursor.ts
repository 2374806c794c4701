import { AppError } from '../../errors.ts';

/**
 * A position in a tenant's event log. `prev` is the snapshot everything before the position was read
 * under. While a window is being read in pages, `now` is the snapshot that bounds it and `afterId` the
 * last event id returned from it. `at` is when `prev` was taken, for retention.
 */
export interface Cursor {
  prev: string;
  now?: string;
  afterId?: number;
  at: number;
}

/** PostgreSQL's pg_snapshot text form: xmin:xmax:xip,xip,... */
const SNAPSHOT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/;
/** Transaction ids stay far below this; a larger one in a cursor was not written by PostgreSQL. */
const MAX_XID = 2n ** 63n - 1n;

/**
 * True when `text` is a snapshot PostgreSQL would take as a pg_snapshot (the checks of its parse_snapshot):
 * ids from 1, xmin ≤ xmax, each in-progress id in [xmin, xmax) and in order. A cursor holding anything else
 * was forged, and must be a 400 here rather than an error from the database.
 */
function isSnapshotText(text: unknown): text is string {
  if (typeof text !== 'string' || !SNAPSHOT.test(text)) return false;
  const { xmin, xmax, inProgress } = parseSnapshotIds(text);
  if (xmin < 1n || xmax < xmin || xmax > MAX_XID) return false;
  let last = xmin;
  for (const id of inProgress) {
    if (id < last || id >= xmax) return false;
    last = id;
  }
  return true;
}

/** The opaque string form of a cursor. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

const invalid = () =>
  new AppError('validation_failed', 'cursor is not valid', [
    { path: '/querystring/since', message: 'is not a cursor returned by this API' },
  ]);

/** The cursor in an opaque string; 400 when it was not made by `encodeCursor`. */
export function decodeCursor(text: string): Cursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof value !== 'object' || value === null) throw invalid();
  const { prev, now, afterId, at } = value as Record<string, unknown>;
  if (!isSnapshotText(prev)) throw invalid();
  if (typeof at !== 'number' || !Number.isSafeInteger(at)) throw invalid();
  if (now !== undefined && !isSnapshotText(now)) throw invalid();
  if (
    afterId !== undefined &&
    (typeof afterId !== 'number' || !Number.isSafeInteger(afterId) || afterId < 0)
  ) {
    throw invalid();
  }
  if ((now === undefined) !== (afterId === undefined)) throw invalid();
  return { prev, at, ...(now === undefined ? {} : { now, afterId }) };
}

/** Refuses a cursor older than the log keeps events: the client must reload its state. */
export function assertCursorRetained(cursor: Cursor, retentionDays: number, now = Date.now()): void {
  if (cursor.at < now - retentionDays * 24 * 3600 * 1000) {
    throw new AppError(
      'cursor_expired',
      `the cursor is older than the ${retentionDays}-day event log; reload state`,
    );
  }
}

/** A parsed pg_snapshot, for checking in-process whether an event was already visible to a cursor. */
export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  inProgress: Set<bigint>;
}

function parseSnapshotIds(text: string): { xmin: bigint; xmax: bigint; inProgress: bigint[] } {
  const [xmin = '0', xmax = '0', xip = ''] = text.split(':');
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    inProgress: xip === '' ? [] : xip.split(',').map((id) => BigInt(id)),
  };
}

/** Parses PostgreSQL's `xmin:xmax:xip,…` snapshot text. */
export function parseSnapshot(text: string): Snapshot {
  const { xmin, xmax, inProgress } = parseSnapshotIds(text);
  return { xmin, xmax, inProgress: new Set(inProgress) };
}

/** pg_visible_in_snapshot, in JavaScript: whether a committed transaction's effects are in a snapshot. */
export function isVisibleIn(tx: bigint, snapshot: Snapshot): boolean {
  return tx < snapshot.xmin || (tx < snapshot.xmax && !snapshot.inProgress.has(tx));
}
