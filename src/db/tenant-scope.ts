import { sql } from 'drizzle-orm';
import type { Orm, Tx } from './client.ts';
import { actingUserId, type TenantContext } from '../context.ts';

declare const tenantScopeBrand: unique symbol;

/**
 * A transaction bound to one tenant. Repository functions take it as their first argument; the only way
 * to obtain one is `inTenant`, which has already set `app.tenant_id` for row-level security, so a query
 * on tenant data without a tenant does not compile, and would see no rows if it did.
 */
export interface TenantScope {
  readonly tenantId: string;
  readonly tx: Tx;
  /** Runs `effect` once the transaction has committed (never if it rolls back): how events are announced. */
  afterCommit(effect: () => void): void;
  readonly [tenantScopeBrand]: true;
}

/** Runs `work` in one transaction bound to `tenantId`; commits when it resolves, rolls back when it throws. */
export async function inTenant<T>(
  orm: Orm,
  tenantId: string,
  work: (scope: TenantScope) => Promise<T>,
): Promise<T> {
  const effects: (() => void)[] = [];
  const result = await orm.transaction(async (tx) => {
    await tx.execute(sql`SELECT set_config('app.tenant_id', ${tenantId}, true)`);
    const scope = { tenantId, tx, afterCommit: (effect: () => void) => effects.push(effect) };
    return work(scope as unknown as TenantScope);
  });
  for (const effect of effects) effect();
  return result;
}

/** Runs `work` in one transaction of the context's tenant, as its acting user (403 when the actor is none). */
export function inTenantAsUser<T>(
  orm: Orm,
  ctx: TenantContext,
  work: (scope: TenantScope, userId: string) => Promise<T>,
): Promise<T> {
  const userId = actingUserId(ctx);
  return inTenant(orm, ctx.tenantId, (scope) => work(scope, userId));
}

/** The tenant id used for operator-scoped rows (idempotency records of /v1/admin requests). */
export const OPERATOR_SCOPE_ID = '00000000-0000-0000-0000-000000000000';
