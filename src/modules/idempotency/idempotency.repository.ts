import { and, eq, sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { idempotencyKeys } from '../../db/schema/idempotency.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;

/** How long a stored response is replayed. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** After this long an unfinished claim is taken to be from a crashed request and may be claimed again. */
export const ABANDONED_CLAIM_SECONDS = 60;

const keyOf = (scope: TenantScope, actor: string, key: string) =>
  and(
    eq(idempotencyKeys.tenantId, scope.tenantId),
    eq(idempotencyKeys.actor, actor),
    eq(idempotencyKeys.key, key),
  );

/**
 * Claims a key for a request. Succeeds when the key is new, expired, or abandoned by a request with the same
 * body; otherwise returns the existing record, for the caller to replay or refuse.
 */
export async function claimIdempotencyKey(
  scope: TenantScope,
  claim: { actor: string; key: string; requestHash: string },
): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyRow }> {
  const claimed = await scope.tx
    .insert(idempotencyKeys)
    .values({ tenantId: scope.tenantId, ...claim })
    .onConflictDoUpdate({
      target: [idempotencyKeys.tenantId, idempotencyKeys.actor, idempotencyKeys.key],
      set: {
        requestHash: sql`excluded.request_hash`,
        status: null,
        responseHeaders: null,
        responseBody: null,
        createdAt: sql`now()`,
      },
      setWhere: sql`${idempotencyKeys.createdAt} < now() - make_interval(secs => ${IDEMPOTENCY_TTL_SECONDS})
        OR (${idempotencyKeys.status} IS NULL
            AND ${idempotencyKeys.requestHash} = excluded.request_hash
            AND ${idempotencyKeys.createdAt} < now() - make_interval(secs => ${ABANDONED_CLAIM_SECONDS}))`,
    })
    .returning({ key: idempotencyKeys.key });
  if (claimed.length > 0) return { claimed: true };
  const [existing] = await scope.tx
    .select()
    .from(idempotencyKeys)
    .where(keyOf(scope, claim.actor, claim.key));
  if (!existing) throw new Error('idempotency key vanished between claim and read');
  return { claimed: false, existing };
}

/** Stores the response of a claimed key, to be replayed to retries. */
export async function completeIdempotencyKey(
  scope: TenantScope,
  claim: { actor: string; key: string },
  response: { status: number; headers: Record<string, string>; body: string },
): Promise<void> {
  await scope.tx
    .update(idempotencyKeys)
    .set({ status: response.status, responseHeaders: response.headers, responseBody: response.body })
    .where(keyOf(scope, claim.actor, claim.key));
}

/** Gives up a claim (the request failed on our side), so a retry runs the request again. */
export async function releaseIdempotencyKey(
  scope: TenantScope,
  claim: { actor: string; key: string },
): Promise<void> {
  await scope.tx.delete(idempotencyKeys).where(keyOf(scope, claim.actor, claim.key));
}

/** Deletes expired records of every tenant through a SECURITY DEFINER function (src/db/functions). */
export async function purgeExpiredIdempotencyKeys(orm: Orm): Promise<number> {
  const result = await orm.execute(
    sql`SELECT parley_purge_expired_idempotency_keys(make_interval(secs => ${IDEMPOTENCY_TTL_SECONDS})) AS purged`,
  );
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}
