import { and, desc, eq, lt, sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { arrayParam } from '../../db/params.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';
import { webhookDeliveries, webhookEndpoints, webhookLanes } from '../../db/schema/webhooks.ts';
import { storedEventOf } from '../events/events.repository.ts';
import type { StoredEvent } from '../events/events.schemas.ts';

export type EndpointRow = typeof webhookEndpoints.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type NewDelivery = Omit<
  typeof webhookDeliveries.$inferInsert,
  'tenantId' | 'status' | 'attempts' | 'createdAt'
>;

const endpointById = (scope: TenantScope, id: string) =>
  and(eq(webhookEndpoints.tenantId, scope.tenantId), eq(webhookEndpoints.id, id));

export async function insertEndpoint(
  scope: TenantScope,
  row: Omit<typeof webhookEndpoints.$inferInsert, 'tenantId'>,
): Promise<EndpointRow> {
  const [created] = await scope.tx
    .insert(webhookEndpoints)
    .values({ ...row, tenantId: scope.tenantId })
    .returning();
  if (!created) throw new Error('insert returned no row');
  return created;
}

/**
 * One endpoint, locked for the rest of the transaction when `lock` (every change of one takes it first,
 * before its lanes and deliveries). FOR NO KEY UPDATE: deliveries inserted meanwhile (their foreign key
 * takes a KEY SHARE lock) do not wait for it.
 */
export async function findEndpoint(
  scope: TenantScope,
  id: string,
  lock = false,
): Promise<EndpointRow | undefined> {
  const query = scope.tx.select().from(webhookEndpoints).where(endpointById(scope, id));
  const [row] = lock ? await query.for('no key update') : await query;
  return row;
}

/** A page of endpoints, newest first (ids are UUIDv7), after the id `before` when given. */
export function listEndpoints(scope: TenantScope, page: { limit: number; before?: string }) {
  return scope.tx
    .select()
    .from(webhookEndpoints)
    .where(
      and(
        eq(webhookEndpoints.tenantId, scope.tenantId),
        page.before === undefined ? undefined : lt(webhookEndpoints.id, page.before),
      ),
    )
    .orderBy(desc(webhookEndpoints.id))
    .limit(page.limit);
}

export async function updateEndpoint(
  scope: TenantScope,
  id: string,
  changes: Partial<Omit<typeof webhookEndpoints.$inferInsert, 'tenantId' | 'id' | 'createdAt'>>,
): Promise<EndpointRow> {
  const [row] = await scope.tx
    .update(webhookEndpoints)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(endpointById(scope, id))
    .returning();
  if (!row) throw new Error('endpoint vanished under its own lock');
  return row;
}

/** Deletes an endpoint; its deliveries and lanes go with it (foreign keys). False when there was none. */
export async function deleteEndpoint(scope: TenantScope, id: string): Promise<boolean> {
  const deleted = await scope.tx
    .delete(webhookEndpoints)
    .where(endpointById(scope, id))
    .returning({ id: webhookEndpoints.id });
  return deleted.length > 0;
}

/** The enabled endpoints of the tenant, with what they receive: whom the log's events go to. */
export function enabledEndpoints(scope: TenantScope) {
  return scope.tx
    .select({ id: webhookEndpoints.id, events: webhookEndpoints.events })
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.tenantId, scope.tenantId), sql`${webhookEndpoints.disabledAt} IS NULL`));
}

/**
 * Records deliveries and makes their lanes due: a lane that is idle becomes due now, one that waits (a
 * retry's backoff, a claim's lease) keeps its time, so its head goes first. Deliveries of the log that an
 * endpoint has already (a window read twice after a crash) are skipped. Returns how many were new.
 */
export async function insertDeliveries(scope: TenantScope, rows: readonly NewDelivery[]): Promise<number> {
  if (rows.length === 0) return 0;
  const inserted = await scope.tx
    .insert(webhookDeliveries)
    .values(rows.map((row) => ({ ...row, tenantId: scope.tenantId })))
    .onConflictDoNothing()
    .returning({ endpointId: webhookDeliveries.endpointId, lane: webhookDeliveries.lane });
  const lanes = new Map(inserted.map((row) => [`${row.endpointId} ${row.lane}`, row]));
  // In one order, so two dispatchers arming lanes of one endpoint (webhooks, push) cannot deadlock.
  const ordered = [...lanes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  await armLanes(
    scope,
    ordered.map(([, lane]) => lane),
  );
  return inserted.length;
}

/** Makes lanes due now unless already scheduled (see `insertDeliveries`). */
export async function armLanes(
  scope: TenantScope,
  lanes: readonly { endpointId: string; lane: string }[],
): Promise<void> {
  if (lanes.length === 0) return;
  await scope.tx
    .insert(webhookLanes)
    .values(lanes.map((lane) => ({ ...lane, tenantId: scope.tenantId, nextAttemptAt: sql`now()` })))
    .onConflictDoUpdate({
      target: [webhookLanes.tenantId, webhookLanes.endpointId, webhookLanes.lane],
      set: { nextAttemptAt: sql`coalesce(${webhookLanes.nextAttemptAt}, now())` },
    });
}

/** Claims due lanes of every tenant for one pass of the sender (parley_claim_webhook_lanes). */
export async function claimLanes(orm: Orm, limit: number, leaseSeconds: number): Promise<LaneKey[]> {
  const result = await orm.execute(sql`
    SELECT tenant_id AS "tenantId", endpoint_id AS "endpointId", lane
    FROM parley_claim_webhook_lanes(${limit}::integer, make_interval(secs => ${leaseSeconds}))`);
  return rowsOf(result);
}

/** A lane, as the sender claims it: an endpoint and a conversation (or a test's or notice's own id). */
export interface LaneKey {
  tenantId: string;
  endpointId: string;
  lane: string;
}

/**
 * A lane's head as the sender reads it in bulk (parley_webhook_lane_heads): the oldest pending delivery
 * (none when nothing is pending), its endpoint's url, sealed secrets and state, and the logged event it
 * carries (none for a payload, or once retention deleted it).
 */
export interface LaneHead extends LaneKey {
  delivery:
    | {
        id: string;
        source: string;
        type: string;
        eventId: number | null;
        cursor: string | null;
        payload: Record<string, unknown> | null;
        messageId: string;
        attempts: number;
      }
    | undefined;
  url: string;
  secrets: EndpointRow['secrets'];
  endpointDisabled: boolean;
  event: StoredEvent | undefined;
  /** The database's snapshot when read: where a replayed event's cursor resumes from. */
  snapshot: string;
}

interface LaneHeadRow {
  tenant_id: string;
  endpoint_id: string;
  lane: string;
  delivery_id: string | null;
  source: string | null;
  type: string | null;
  event_id: string | number | null;
  cursor: string | null;
  payload: Record<string, unknown> | null;
  message_id: string | null;
  attempts: number | null;
  url: string;
  secrets: EndpointRow['secrets'];
  endpoint_disabled: boolean;
  event_tx: string | null;
  event_conversation_id: string | null;
  event_type: string | null;
  event_seq: string | number | null;
  event_subject_user_id: string | null;
  event_is_private: boolean | null;
  event_data: unknown;
  event_created_at: Date | string | null;
  snapshot: string;
}

function laneHeadOf(row: LaneHeadRow): LaneHead {
  const eventId = row.event_id === null ? null : Number(row.event_id);
  return {
    tenantId: row.tenant_id,
    endpointId: row.endpoint_id,
    lane: row.lane,
    delivery:
      row.delivery_id === null
        ? undefined
        : {
            id: row.delivery_id,
            source: row.source ?? '',
            type: row.type ?? '',
            eventId,
            cursor: row.cursor,
            payload: row.payload,
            messageId: row.message_id ?? '',
            attempts: row.attempts ?? 0,
          },
    url: row.url,
    secrets: row.secrets,
    endpointDisabled: row.endpoint_disabled,
    event:
      eventId === null || row.event_tx === null
        ? undefined
        : storedEventOf(
            {
              tx: row.event_tx,
              conversationId: row.event_conversation_id ?? '',
              type: row.event_type ?? '',
              seq: row.event_seq,
              subjectUserId: row.event_subject_user_id,
              isPrivate: row.event_is_private ?? false,
              data: row.event_data,
              createdAt: row.event_created_at ?? new Date(0),
            },
            eventId,
          ),
    snapshot: row.snapshot,
  };
}

/** The heads of claimed lanes of any tenants, in one statement (see `LaneHead`). */
export async function laneHeads(orm: Orm, lanes: readonly LaneKey[]): Promise<LaneHead[]> {
  if (lanes.length === 0) return [];
  const keys = lanes.map((lane) => ({
    tenant_id: lane.tenantId,
    endpoint_id: lane.endpointId,
    lane: lane.lane,
  }));
  const result = await orm.execute(
    sql`SELECT * FROM parley_webhook_lane_heads(${JSON.stringify(keys)}::jsonb)`,
  );
  return rowsOf<LaneHeadRow>(result).map(laneHeadOf);
}

/** An attempt that succeeded, to record: its lane, its delivery, the status, and whether its claim goes on. */
export interface WebhookSuccess extends LaneKey {
  deliveryId: string;
  status: number;
  keep: boolean;
}

/**
 * Records attempts that succeeded, of any tenants, in one statement (parley_record_webhook_successes), and
 * returns the heads of the lanes kept for their claimers.
 */
export async function recordSuccesses(
  orm: Orm,
  successes: readonly WebhookSuccess[],
  leaseSeconds: number,
): Promise<LaneHead[]> {
  if (successes.length === 0) return [];
  const items = successes.map((success) => ({
    tenant_id: success.tenantId,
    endpoint_id: success.endpointId,
    lane: success.lane,
    delivery_id: success.deliveryId,
    status: success.status,
    keep: success.keep,
  }));
  const result = await orm.execute(sql`
    SELECT * FROM parley_record_webhook_successes(
      ${JSON.stringify(items)}::jsonb, make_interval(secs => ${leaseSeconds}))`);
  return rowsOf<LaneHeadRow>(result).map(laneHeadOf);
}

/** Locks a lane until the transaction ends: whoever changes its schedule holds it (the sender, arming). */
export async function lockLane(scope: TenantScope, endpointId: string, lane: string): Promise<boolean> {
  const rows = await scope.tx
    .select({ lane: webhookLanes.lane })
    .from(webhookLanes)
    .where(
      and(
        eq(webhookLanes.tenantId, scope.tenantId),
        eq(webhookLanes.endpointId, endpointId),
        eq(webhookLanes.lane, lane),
      ),
    )
    .for('update');
  return rows.length > 0;
}

/** The lane's head: its oldest pending delivery, by event order (tests and notices by creation). */
export async function laneHead(
  scope: TenantScope,
  endpointId: string,
  lane: string,
): Promise<DeliveryRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.tenantId, scope.tenantId),
        eq(webhookDeliveries.endpointId, endpointId),
        eq(webhookDeliveries.lane, lane),
        eq(webhookDeliveries.status, 'pending'),
      ),
    )
    .orderBy(webhookDeliveries.eventId, webhookDeliveries.id)
    .limit(1);
  return row;
}

/** Sets when a lane's head may go next: a time, now (`'now'`), or null (idle: nothing pending). */
export async function scheduleLane(
  scope: TenantScope,
  endpointId: string,
  lane: string,
  next: Date | 'now' | null,
): Promise<void> {
  await scope.tx
    .update(webhookLanes)
    .set({ nextAttemptAt: next === 'now' ? sql`now()` : next })
    .where(
      and(
        eq(webhookLanes.tenantId, scope.tenantId),
        eq(webhookLanes.endpointId, endpointId),
        eq(webhookLanes.lane, lane),
      ),
    );
}

/** Idles every lane of an endpoint (disabled: nothing goes until it is enabled again). */
export async function idleLanesOf(scope: TenantScope, endpointId: string): Promise<void> {
  await scope.tx
    .update(webhookLanes)
    .set({ nextAttemptAt: null })
    .where(and(eq(webhookLanes.tenantId, scope.tenantId), eq(webhookLanes.endpointId, endpointId)));
}

/** Makes due every lane of an endpoint that has something pending (enabled again). */
export async function armPendingLanesOf(scope: TenantScope, endpointId: string): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE webhook_lanes l SET next_attempt_at = now()
    WHERE l.tenant_id = ${scope.tenantId} AND l.endpoint_id = ${endpointId}
      AND EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.tenant_id = l.tenant_id AND d.endpoint_id = l.endpoint_id AND d.lane = l.lane
                    AND d.status = 'pending')`);
}

export async function findDelivery(
  scope: TenantScope,
  endpointId: string,
  id: string,
  lock = false,
): Promise<DeliveryRow | undefined> {
  const query = scope.tx
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.tenantId, scope.tenantId),
        eq(webhookDeliveries.endpointId, endpointId),
        eq(webhookDeliveries.id, id),
      ),
    );
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export async function updateDelivery(
  scope: TenantScope,
  id: string,
  changes: Partial<Pick<DeliveryRow, 'status' | 'attempts' | 'lastStatusCode' | 'lastError'>> & {
    nextAttemptAt?: Date | SQL | null;
    lastAttemptAt?: SQL;
  },
): Promise<DeliveryRow> {
  const [row] = await scope.tx
    .update(webhookDeliveries)
    .set(changes)
    .where(and(eq(webhookDeliveries.tenantId, scope.tenantId), eq(webhookDeliveries.id, id)))
    .returning();
  if (!row) throw new Error('delivery vanished under its lane lock');
  return row;
}

/** A page of an endpoint's deliveries, newest first, optionally of one status. */
export function listDeliveries(
  scope: TenantScope,
  endpointId: string,
  page: { limit: number; before?: string; status?: string },
) {
  return scope.tx
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.tenantId, scope.tenantId),
        eq(webhookDeliveries.endpointId, endpointId),
        page.status === undefined ? undefined : eq(webhookDeliveries.status, page.status),
        page.before === undefined ? undefined : lt(webhookDeliveries.id, page.before),
      ),
    )
    .orderBy(desc(webhookDeliveries.id))
    .limit(page.limit);
}

/** The events since a time that an endpoint receives (`*` or its types). */
const replayable = (scope: TenantScope, endpoint: { events: readonly string[] }, since: string) => sql`
  e.tenant_id = ${scope.tenantId} AND e.created_at >= ${since}::timestamptz
  AND (${'*'} = ANY (${arrayParam(endpoint.events, 'text')}) OR e.type = ANY (${arrayParam(endpoint.events, 'text')}))`;

/** How many events a replay since `since` would send to the endpoint. */
export async function countReplayable(
  scope: TenantScope,
  endpoint: { events: readonly string[] },
  since: string,
): Promise<number> {
  const result = await scope.tx.execute(
    sql`SELECT count(*)::int AS n FROM events e WHERE ${replayable(scope, endpoint, since)}`,
  );
  return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
}

/**
 * Replays the log since a time to one endpoint, in one statement: a delivery of source `replay` per event
 * it receives (at most `ids.length`, the ids they take, UUIDv7 made by the caller: PostgreSQL 15 has
 * none), with the webhook-id of the event's first delivery, so a receiver that kept it may skip it; their
 * lanes made due. Returns how many deliveries it made.
 */
export async function insertReplay(
  scope: TenantScope,
  endpoint: { id: string; events: readonly string[] },
  since: string,
  ids: readonly string[],
): Promise<number> {
  const result = await scope.tx.execute(sql`
    WITH picked AS (
      SELECT e.id, e.conversation_id, e.type, row_number() OVER (ORDER BY e.id) AS n
      FROM events e
      WHERE ${replayable(scope, endpoint, since)}
      ORDER BY e.id
      LIMIT ${ids.length}
    ), inserted AS (
      INSERT INTO webhook_deliveries
        (tenant_id, id, endpoint_id, lane, source, type, event_id, message_id, next_attempt_at)
      SELECT ${scope.tenantId}, (${arrayParam(ids, 'uuid')})[p.n], ${endpoint.id}, p.conversation_id, 'replay',
             p.type, p.id, 'msg_' || p.id, now()
      FROM picked p
      RETURNING lane
    ), lanes AS (
      INSERT INTO webhook_lanes (tenant_id, endpoint_id, lane, next_attempt_at)
      SELECT DISTINCT ${scope.tenantId}::uuid, ${endpoint.id}::uuid, lane, now() FROM inserted
      ON CONFLICT (tenant_id, endpoint_id, lane)
      DO UPDATE SET next_attempt_at = coalesce(webhook_lanes.next_attempt_at, now())
    )
    SELECT count(*)::int AS n FROM inserted`);
  return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
}

/**
 * Puts failed deliveries of the tenant back at the start of their schedule (all of them, one endpoint's,
 * or those named), their lanes made due; `parley jobs retry`. Locks the lanes first, in one order, as
 * every writer of a lane and its deliveries does. Returns how many it put back.
 */
export async function retryFailedDeliveries(
  scope: TenantScope,
  filter: { endpointId?: string; deliveryIds?: readonly string[] },
): Promise<number> {
  const which = sql`d.tenant_id = ${scope.tenantId} AND d.status = 'failed'
    ${filter.endpointId === undefined ? sql`` : sql`AND d.endpoint_id = ${filter.endpointId}`}
    ${filter.deliveryIds === undefined ? sql`` : sql`AND d.id = ANY (${arrayParam(filter.deliveryIds, 'uuid')})`}`;
  await scope.tx.execute(sql`
    SELECT 1 FROM webhook_lanes l
    WHERE (l.tenant_id, l.endpoint_id, l.lane) IN (
      SELECT d.tenant_id, d.endpoint_id, d.lane FROM webhook_deliveries d WHERE ${which})
    ORDER BY l.endpoint_id, l.lane
    FOR UPDATE`);
  const result = await scope.tx.execute(sql`
    WITH retried AS (
      UPDATE webhook_deliveries d
      SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
      WHERE ${which}
      RETURNING d.endpoint_id, d.lane
    ), armed AS (
      UPDATE webhook_lanes l SET next_attempt_at = coalesce(l.next_attempt_at, now())
      FROM (SELECT DISTINCT endpoint_id, lane FROM retried) r
      WHERE l.tenant_id = ${scope.tenantId} AND l.endpoint_id = r.endpoint_id AND l.lane = r.lane
    )
    SELECT count(*)::int AS n FROM retried`);
  return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
}

/** Deletes deliveries done with (delivered, failed) older than the retention, for every tenant. */
export async function purgeWebhookDeliveries(orm: Orm, retentionDays: number): Promise<number> {
  const result = await orm.execute(
    sql`SELECT parley_purge_webhook_deliveries(make_interval(days => ${retentionDays})) AS purged`,
  );
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}
