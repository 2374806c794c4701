import { and, eq, sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { eventConsumers } from '../../db/schema/consumers.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

/** A consumer's position in a tenant's log (see `eventConsumers`). */
export interface ConsumerPosition {
  prev: string;
  now: string | null;
  afterId: number | null;
  prevAt: Date;
}

/**
 * Starts following the tenant's log from the present, unless the consumer already does: what committed
 * before this transaction is not its business (an endpoint created now receives what happens from now on).
 */
export async function ensureConsumer(scope: TenantScope, consumer: string): Promise<void> {
  await scope.tx
    .insert(eventConsumers)
    .values({ tenantId: scope.tenantId, consumer, prev: sql`pg_current_snapshot()::text` })
    .onConflictDoNothing();
}

/**
 * The consumer's position, locked until the transaction ends; undefined when it does not follow this
 * tenant, or another process is advancing it right now (SKIP LOCKED: that one will read what is new).
 */
export async function lockConsumer(
  scope: TenantScope,
  consumer: string,
): Promise<ConsumerPosition | undefined> {
  const [row] = await scope.tx
    .select({
      prev: eventConsumers.prev,
      now: eventConsumers.now,
      afterId: eventConsumers.afterId,
      prevAt: eventConsumers.prevAt,
    })
    .from(eventConsumers)
    .where(and(eq(eventConsumers.tenantId, scope.tenantId), eq(eventConsumers.consumer, consumer)))
    .for('update', { skipLocked: true });
  return row;
}

/**
 * Moves the position: into a window being read in pages (`now` and `afterId`), or past a finished one
 * (`prev` = its end, taken now).
 */
export async function saveConsumer(
  scope: TenantScope,
  consumer: string,
  position: { prev: string; now: string; afterId: number } | { prev: string },
): Promise<void> {
  await scope.tx
    .update(eventConsumers)
    .set(
      'now' in position
        ? { prev: position.prev, now: position.now, afterId: position.afterId }
        : { prev: position.prev, now: null, afterId: null, prevAt: sql`now()` },
    )
    .where(and(eq(eventConsumers.tenantId, scope.tenantId), eq(eventConsumers.consumer, consumer)));
}

/**
 * Every tenant the consumer follows, and whether it has events the position has not read
 * (parley_event_consumer_tenants): what the consumer's sweep reads.
 */
export async function consumerTenants(
  orm: Orm,
  consumer: string,
): Promise<{ tenantId: string; behind: boolean }[]> {
  const result = await orm.execute(
    sql`SELECT tenant_id AS "tenantId", behind FROM parley_event_consumer_tenants(${consumer})`,
  );
  return rowsOf<{ tenantId: string; behind: boolean }>(result);
}
