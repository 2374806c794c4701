import { sql } from 'drizzle-orm';
import type { Orm, Tx } from './client.ts';
import { actingUserId, type TenantContext } from '../context.ts';

declare const tenantDbBrand: unique symbol;
declare const tenantScopeBrand: unique symbol;

/**
 * One tenant's data, reached one statement at a time: the tenant's id and where its statements go. Taken by
 * the repository functions that are one call of a database function binding the tenant itself (it runs
 * `set_config('app.tenant_id', …, true)` from its tenant argument before it reads, so row-level security
 * applies): the hot paths (a send, a timeline page, the conversation list, the unread counts, the event
 * feed), which a transaction would cost a BEGIN, a `set_config` and a COMMIT more, each a round trip.
 * Such a function gets its tenant id from here and nowhere else: it takes no bare tenant id, and a
 * `TenantDb` comes only from `tenantDb`, given the context of an authenticated caller, or is a
 * `TenantScope` (its transaction, which is bound to the same tenant). Building one asks the database
 * nothing. Anything else run through `db` outside a scope has no tenant set and sees no tenant rows.
 */
export interface TenantDb {
  readonly tenantId: string;
  /** The pool (each statement commits on its own), or the transaction of the `TenantScope` this is. */
  readonly db: Orm | Tx;
  readonly [tenantDbBrand]: true;
}

/**
 * A transaction bound to one tenant. Repository functions take it as their first argument; the only way
 * to obtain one is `inTenant`, which has already set `app.tenant_id` for row-level security, so a query
 * on tenant data without a tenant does not compile, and would see no rows if it did. It is a `TenantDb` as
 * well, so the one-statement functions also run inside it, with the transaction's own tenant.
 */
export interface TenantScope extends TenantDb {
  readonly tx: Tx;
  readonly db: Tx;
  /** Runs `effect` once the transaction has committed (never if it rolls back): how events are announced. */
  afterCommit(effect: () => void): void;
  readonly [tenantScopeBrand]: true;
}

/**
 * The tenant of an authenticated caller, for one-statement calls through `orm` (see `TenantDb`): no
 * transaction and no round trip; each statement binds the tenant itself.
 */
export function tenantDb(orm: Orm, ctx: TenantContext): TenantDb {
  return { tenantId: ctx.tenantId, db: orm } as unknown as TenantDb;
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
    const scope = { tenantId, tx, db: tx, afterCommit: (effect: () => void) => effects.push(effect) };
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
