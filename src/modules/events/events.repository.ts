import { sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import type { TenantDb, TenantScope } from '../../db/tenant-scope.ts';
import type { LoggedEventType, MessageEventData, NewEvent, StoredEvent } from './events.schemas.ts';

/**
 * Records events of one conversation. The statement first takes the conversation's row lock (a no-op when
 * the transaction holds it already), so event ids are drawn in commit order per conversation.
 */
export async function insertEvents(
  scope: TenantScope,
  conversationId: string,
  events: NewEvent[],
): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map(
    (event) =>
      sql`(${event.type}::text, ${event.seq ?? null}::bigint, ${event.subjectUserId ?? null}::text, ${event.isPrivate ?? false}::boolean, ${JSON.stringify(event.data)}::jsonb)`,
  );
  await scope.tx.execute(sql`
    WITH locked AS (
      SELECT id FROM conversations WHERE tenant_id = ${scope.tenantId} AND id = ${conversationId} FOR UPDATE
    )
    INSERT INTO events (tenant_id, conversation_id, type, seq, subject_user_id, is_private, data)
    SELECT ${scope.tenantId}::uuid, locked.id, e.type, e.seq, e.subject_user_id, e.is_private, e.data
    FROM locked, (VALUES ${sql.join(rows, sql`, `)}) AS e (type, seq, subject_user_id, is_private, data)`);
}

/** A row of the events table as the readers select it; numbers may come back as text. */
export interface EventRow {
  id: string | number;
  tx: string;
  conversationId: string;
  type: string;
  seq: string | number | null;
  subjectUserId: string | null;
  isPrivate: boolean;
  data: unknown;
  createdAt: Date | string;
}

/**
 * The one place a row of the log becomes a typed event. What the log holds is written by the services
 * through `NewEvent` and by the send functions in SQL; the test suite checks every event it writes against
 * the contract (test/helpers/event-contract.ts), so delivery trusts the row instead of validating it again;
 * the feed checks only the fields it routes by (src/realtime/feed.ts, `routingProblemOf`).
 */
export function storedEventOf(row: Omit<EventRow, 'id'>, id: string | number): StoredEvent {
  return {
    id: Number(id),
    tx: row.tx,
    conversationId: row.conversationId,
    type: row.type,
    seq: row.seq === null ? null : Number(row.seq),
    subjectUserId: row.subjectUserId,
    isPrivate: row.isPrivate,
    data: row.data,
    createdAt: new Date(row.createdAt),
  } as StoredEvent;
}

/** One event of the tenant's log by id; undefined once retention has deleted it. */
export async function readEventById(scope: TenantScope, id: number): Promise<StoredEvent | undefined> {
  const result = await scope.tx.execute(sql`
    SELECT e.tx::text AS tx, e.conversation_id AS "conversationId", e.type, e.seq::bigint AS seq,
           e.subject_user_id AS "subjectUserId", e.is_private AS "isPrivate", e.data, e.created_at AS "createdAt"
    FROM events e
    WHERE e.tenant_id = ${scope.tenantId} AND e.id = ${id}`);
  const [row] = rowsOf<Omit<EventRow, 'id'>>(result);
  return row === undefined ? undefined : storedEventOf(row, id);
}

/** The database's current snapshot, as text: the position of everything committed so far. */
export async function currentSnapshot(orm: Orm | TenantScope['tx']): Promise<string> {
  const result = await orm.execute(sql`SELECT pg_current_snapshot()::text AS snapshot`);
  const [row] = rowsOf<{ snapshot: string }>(result);
  if (!row) throw new Error('no snapshot');
  return row.snapshot;
}

/**
 * The events of a window: committed by transactions the `now` snapshot sees and the `prev` one did not,
 * after event `afterId`, in id order. With `userId`, only the events that user receives: those of
 * conversations it is a member of (unless private) and those about it.
 */
export async function readEvents(
  scope: TenantScope,
  window: { prev: string; now: string; afterId: number; limit: number; userId?: string },
): Promise<StoredEvent[]> {
  const forUser =
    window.userId === undefined
      ? sql``
      : sql`AND (e.subject_user_id = ${window.userId} OR (NOT e.is_private AND EXISTS (
            SELECT 1 FROM conversation_members m
            WHERE m.tenant_id = e.tenant_id AND m.conversation_id = e.conversation_id AND m.user_id = ${window.userId})))`;
  const result = await scope.tx.execute(sql`
    SELECT e.id::bigint AS id, e.tx::text AS tx, e.conversation_id AS "conversationId", e.type, e.seq::bigint AS seq,
           e.subject_user_id AS "subjectUserId", e.is_private AS "isPrivate", e.data, e.created_at AS "createdAt"
    FROM events e
    WHERE e.tenant_id = ${scope.tenantId}
      AND e.tx >= pg_snapshot_xmin(${window.prev}::pg_snapshot)
      AND NOT pg_visible_in_snapshot(e.tx, ${window.prev}::pg_snapshot)
      AND pg_visible_in_snapshot(e.tx, ${window.now}::pg_snapshot)
      AND e.id > ${window.afterId}
      ${forUser}
    ORDER BY e.id
    LIMIT ${window.limit}`);
  return rowsOf<EventRow>(result).map((row) => storedEventOf(row, row.id));
}

/**
 * A window of a tenant's log for a process's feed, in one round trip (the parley_read_events function,
 * migration 0009): the events after `afterId` that `now` sees and `prev` did not, and the window's end.
 * With `now` undefined the window ends at the current snapshot, which is returned. It sets the tenant
 * itself and commits on its own, so it takes a `TenantDb`, not a transaction.
 */
export async function readEventWindow(
  { db, tenantId }: TenantDb,
  window: { prev: string; now: string | undefined; afterId: number; limit: number },
): Promise<{ now: string; events: StoredEvent[] }> {
  const result = await db.execute(sql`
    SELECT snapshot, id::bigint AS id, tx, conversation_id AS "conversationId", type, seq::bigint AS seq,
           subject_user_id AS "subjectUserId", is_private AS "isPrivate", data, created_at AS "createdAt"
    FROM parley_read_events(${tenantId}::uuid, ${window.prev}::text, ${window.now ?? null}::text,
                            ${window.afterId}::bigint, ${window.limit}::integer)`);
  const rows = rowsOf<Omit<EventRow, 'id'> & { snapshot: string; id: string | number | null }>(result);
  const now = rows[0]?.snapshot;
  if (now === undefined) throw new Error('parley_read_events returned no row');
  return {
    now,
    events: rows.flatMap((row) => (row.id === null ? [] : [storedEventOf(row, row.id)])),
  };
}

/** The event types that carry a message's content, and what redaction leaves of it (typed by the contract). */
const MESSAGE_CONTENT_EVENTS = sql`(${sql.join(
  (['message.created', 'message.updated'] satisfies LoggedEventType[]).map((type) => sql`${type}`),
  sql`, `,
)})`;
const REDACTED = sql`${JSON.stringify({
  text: null,
  mentions: [],
  metadata: {},
  attachments: [],
  client_msg_id: null,
} satisfies Partial<MessageEventData>)}::jsonb`;
/** What redaction leaves of an `attachment.updated` event: no name, no thumbnails (its bytes are gone too). */
const REDACTED_ATTACHMENT = sql`jsonb_set(jsonb_set(data, '{attachment,name}', '""'), '{attachment,thumbnails}', '[]')`;

/** Blanks a deleted message's content in the events that carried it: deletion purges it at once. */
export async function redactMessageEvents(
  scope: TenantScope,
  conversationId: string,
  seq: number,
): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE events SET data = data || ${REDACTED}
    WHERE tenant_id = ${scope.tenantId} AND conversation_id = ${conversationId} AND seq = ${seq}
      AND type IN ${MESSAGE_CONTENT_EVENTS}`);
  await scope.tx.execute(sql`
    UPDATE events SET data = ${REDACTED_ATTACHMENT}
    WHERE tenant_id = ${scope.tenantId} AND conversation_id = ${conversationId} AND seq = ${seq}
      AND type = ${'attachment.updated' satisfies LoggedEventType}`);
}

/** Blanks the content of every logged message an erased user sent. */
export async function redactEventsOfSender(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE events SET data = data || ${REDACTED}
    WHERE tenant_id = ${scope.tenantId} AND type IN ${MESSAGE_CONTENT_EVENTS} AND data->>'sender_id' = ${userId}`);
  await scope.tx.execute(sql`
    UPDATE events SET data = ${REDACTED_ATTACHMENT}
    WHERE tenant_id = ${scope.tenantId} AND type = ${'attachment.updated' satisfies LoggedEventType}
      AND data #>> '{attachment,uploader_id}' = ${userId}`);
}

/** Deletes events older than the retention, for every tenant (SECURITY DEFINER, migration 0006). */
export async function purgeEvents(orm: Orm, retentionDays: number): Promise<number> {
  const result = await orm.execute(
    sql`SELECT parley_purge_events(make_interval(days => ${retentionDays})) AS purged`,
  );
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}
