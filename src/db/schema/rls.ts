import { sql } from 'drizzle-orm';
import { pgPolicy, pgRole } from 'drizzle-orm/pg-core';

/**
 * The role the server runs its queries as: not superuser, not BYPASSRLS, not the owner of any table,
 * so row-level security always applies to it. Created by migration 0000 (roles are cluster-wide).
 */
export const appRole = pgRole('parley_app').existing();

/**
 * The tenant bound to the current transaction by `set_config('app.tenant_id', …, true)`; NULL when unset.
 * A scalar subquery, so a query evaluates it once (an InitPlan) rather than calling `current_setting` for
 * every row it looks at: a search or an unread count looks at tens of thousands.
 */
export const currentTenantId = sql`(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)`;

/** Row-level security for a tenant table: only rows of the transaction's tenant are visible or writable. */
export function tenantIsolation() {
  return pgPolicy('tenant_isolation', {
    as: 'permissive',
    for: 'all',
    to: appRole,
    using: sql`tenant_id = ${currentTenantId}`,
    withCheck: sql`tenant_id = ${currentTenantId}`,
  });
}
