import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { arrayParam } from '../../db/params.ts';
import { tenants } from '../../db/schema/control.ts';
import { pushDeliveries, pushSubscriptions } from '../../db/schema/push.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type SubscriptionRow = typeof pushSubscriptions.$inferSelect;
export type PushDeliveryRow = typeof pushDeliveries.$inferSelect;

/**
 * Records a subscription, or finds the one the endpoint already has in the tenant (a browser subscribes
 * again with the same endpoint). `created` says which.
 */
export async function upsertSubscription(
  scope: TenantScope,
  row: Omit<typeof pushSubscriptions.$inferInsert, 'tenantId' | 'createdAt'>,
): Promise<{ row: SubscriptionRow; created: boolean }> {
  const [inserted] = await scope.tx
    .insert(pushSubscriptions)
    .values({ ...row, tenantId: scope.tenantId })
    .onConflictDoNothing()
    .returning();
  if (inserted) return { row: inserted, created: true };
  const [existing] = await scope.tx
    .select()
    .from(pushSubscriptions)
    .where(and(eq(pushSubscriptions.tenantId, scope.tenantId), eq(pushSubscriptions.endpoint, row.endpoint)));
  if (!existing) throw new Error('push subscription vanished between insert and select');
  return { row: existing, created: false };
}

/** Deletes a user's subscriptions beyond the newest `keep` (ids are UUIDv7: newest is highest). */
export async function trimSubscriptions(scope: TenantScope, userId: string, keep: number): Promise<void> {
  await scope.tx.execute(sql`
    DELETE FROM push_subscriptions
    WHERE tenant_id = ${scope.tenantId} AND user_id = ${userId}
      AND id NOT IN (SELECT id FROM push_subscriptions
                     WHERE tenant_id = ${scope.tenantId} AND user_id = ${userId}
                     ORDER BY id DESC LIMIT ${keep})`);
}

/** A user's subscriptions, newest first. */
export function listSubscriptions(scope: TenantScope, userId: string) {
  return scope.tx
    .select()
    .from(pushSubscriptions)
    .where(and(eq(pushSubscriptions.tenantId, scope.tenantId), eq(pushSubscriptions.userId, userId)))
    .orderBy(desc(pushSubscriptions.id));
}

export async function findSubscription(scope: TenantScope, id: string): Promise<SubscriptionRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(pushSubscriptions)
    .where(and(eq(pushSubscriptions.tenantId, scope.tenantId), eq(pushSubscriptions.id, id)));
  return row;
}

/**
 * Deletes a subscription (of `userId` only, when given); its pending pushes go with it (foreign key).
 * False when there was none.
 */
export async function deleteSubscription(scope: TenantScope, id: string, userId?: string): Promise<boolean> {
  const deleted = await scope.tx
    .delete(pushSubscriptions)
    .where(
      and(
        eq(pushSubscriptions.tenantId, scope.tenantId),
        eq(pushSubscriptions.id, id),
        userId === undefined ? undefined : eq(pushSubscriptions.userId, userId),
      ),
    )
    .returning({ id: pushSubscriptions.id });
  return deleted.length > 0;
}

/** Deletes every subscription of a user (erasure): an endpoint is personal data. */
export async function deleteSubscriptionsOf(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx
    .delete(pushSubscriptions)
    .where(and(eq(pushSubscriptions.tenantId, scope.tenantId), eq(pushSubscriptions.userId, userId)));
}

/** Whether the tenant's pushes and notification.requested carry a preview of the text. */
export async function tenantPushPreviews(scope: TenantScope): Promise<boolean> {
  const [row] = await scope.tx
    .select({ pushPreviews: tenants.pushPreviews })
    .from(tenants)
    .where(eq(tenants.id, scope.tenantId));
  return row?.pushPreviews ?? false;
}

/**
 * The members of a conversation a new message may be pushed to: every member but the sender who has not
 * muted it now, and, in a channel, only those mentioned. Whether each is online is the caller's question.
 */
export async function pushCandidates(
  scope: TenantScope,
  message: { conversationId: string; senderId: string; mentions: readonly string[] },
): Promise<string[]> {
  const result = await scope.tx.execute(sql`
    SELECT m.user_id AS "userId"
    FROM conversation_members m
    JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id
    WHERE m.tenant_id = ${scope.tenantId} AND m.conversation_id = ${message.conversationId}
      AND c.deleted_at IS NULL
      AND m.user_id <> ${message.senderId}
      AND (m.muted_until IS NULL OR m.muted_until <= now())
      AND (c.type <> 'channel' OR m.user_id = ANY (${arrayParam(message.mentions, 'text')}))
    ORDER BY m.user_id`);
  return rowsOf<{ userId: string }>(result).map((row) => row.userId);
}

/** The subscriptions of these users. */
export function subscriptionsOf(scope: TenantScope, userIds: readonly string[]) {
  return scope.tx
    .select({ id: pushSubscriptions.id, userId: pushSubscriptions.userId })
    .from(pushSubscriptions)
    .where(
      and(
        eq(pushSubscriptions.tenantId, scope.tenantId),
        sql`${pushSubscriptions.userId} = ANY (${arrayParam(userIds, 'text')})`,
      ),
    );
}

/** Whether the tenant has any push subscription (otherwise the push consumer only feeds webhooks). */
export async function hasSubscriptions(scope: TenantScope): Promise<boolean> {
  const [row] = await scope.tx
    .select({ id: pushSubscriptions.id })
    .from(pushSubscriptions)
    .where(eq(pushSubscriptions.tenantId, scope.tenantId))
    .limit(1);
  return row !== undefined;
}

/**
 * Records pushes, due now, each replacing the pending ones of its subscription and conversation: pushes
 * of one conversation collapse on the device anyway (Topic), so only the newest needs to go.
 */
export async function insertPushDeliveries(
  scope: TenantScope,
  rows: readonly { id: string; subscriptionId: string; conversationId: string; eventId: number }[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const subscriptions = arrayParam(
    rows.map((row) => row.subscriptionId),
    'uuid',
  );
  const conversations = arrayParam(
    rows.map((row) => row.conversationId),
    'uuid',
  );
  await scope.tx.execute(sql`
    DELETE FROM push_deliveries
    WHERE tenant_id = ${scope.tenantId} AND status = 'pending'
      AND (subscription_id, conversation_id) IN (SELECT * FROM unnest(${subscriptions}, ${conversations}))`);
  await scope.tx
    .insert(pushDeliveries)
    .values(rows.map((row) => ({ ...row, tenantId: scope.tenantId, nextAttemptAt: sql`now()` })));
  return rows.length;
}

/** Claims due pushes of every tenant for one pass of the sender (parley_claim_push_deliveries). */
export async function claimPushDeliveries(
  orm: Orm,
  limit: number,
  leaseSeconds: number,
): Promise<{ tenantId: string; id: string }[]> {
  const result = await orm.execute(sql`
    SELECT tenant_id AS "tenantId", id
    FROM parley_claim_push_deliveries(${limit}::integer, make_interval(secs => ${leaseSeconds}))`);
  return rowsOf(result);
}

/** A push with its subscription; undefined when either is gone (replaced, unsubscribed). */
export async function findPushDelivery(
  scope: TenantScope,
  id: string,
): Promise<{ delivery: PushDeliveryRow; subscription: SubscriptionRow } | undefined> {
  const [row] = await scope.tx
    .select({ delivery: pushDeliveries, subscription: pushSubscriptions })
    .from(pushDeliveries)
    .innerJoin(
      pushSubscriptions,
      and(
        eq(pushSubscriptions.tenantId, pushDeliveries.tenantId),
        eq(pushSubscriptions.id, pushDeliveries.subscriptionId),
      ),
    )
    .where(
      and(
        eq(pushDeliveries.tenantId, scope.tenantId),
        eq(pushDeliveries.id, id),
        eq(pushDeliveries.status, 'pending'),
      ),
    );
  return row;
}

export async function deletePushDelivery(scope: TenantScope, id: string): Promise<void> {
  await scope.tx
    .delete(pushDeliveries)
    .where(and(eq(pushDeliveries.tenantId, scope.tenantId), eq(pushDeliveries.id, id)));
}

/** Records a failed attempt: due again at `nextAttemptAt`, or `failed` (given up) when that is null. */
export async function recordPushFailure(
  scope: TenantScope,
  id: string,
  failure: { attempts: number; nextAttemptAt: Date | null; statusCode: number | null; error: string },
): Promise<void> {
  const changes: Partial<typeof pushDeliveries.$inferInsert> & { nextAttemptAt: Date | SQL | null } = {
    attempts: failure.attempts,
    status: failure.nextAttemptAt === null ? 'failed' : 'pending',
    nextAttemptAt: failure.nextAttemptAt,
    lastStatusCode: failure.statusCode,
    lastError: failure.error,
  };
  await scope.tx
    .update(pushDeliveries)
    .set(changes)
    .where(
      and(
        eq(pushDeliveries.tenantId, scope.tenantId),
        eq(pushDeliveries.id, id),
        eq(pushDeliveries.status, 'pending'),
      ),
    );
}

/** Deletes pushes given up on older than the retention, for every tenant. */
export async function purgePushDeliveries(orm: Orm, retentionDays: number): Promise<number> {
  const result = await orm.execute(
    sql`SELECT parley_purge_push_deliveries(make_interval(days => ${retentionDays})) AS purged`,
  );
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}
