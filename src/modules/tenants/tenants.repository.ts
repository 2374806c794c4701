import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Orm, Tx } from '../../db/client.ts';
import { apiKeys, tenants } from '../../db/schema/control.ts';

// Control-plane queries (see src/db/schema/control.ts): operator-only, not under row-level security.

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** Inserts a tenant. */
export async function insertTenant(tx: Orm | Tx, tenant: { id: string; name: string }): Promise<TenantRow> {
  const [row] = await tx.insert(tenants).values(tenant).returning();
  if (!row) throw new Error('insert into tenants returned no row');
  return row;
}

/** One tenant by id. */
export async function findTenant(orm: Orm, tenantId: string): Promise<TenantRow | undefined> {
  const [row] = await orm.select().from(tenants).where(eq(tenants.id, tenantId));
  return row;
}

/** A page of tenants in creation order (ids are UUIDv7), after `afterId`. */
export function listTenants(
  orm: Orm,
  page: { afterId: string | undefined; limit: number },
): Promise<TenantRow[]> {
  return orm
    .select()
    .from(tenants)
    .where(page.afterId === undefined ? undefined : gt(tenants.id, page.afterId))
    .orderBy(asc(tenants.id))
    .limit(page.limit);
}

/** Changes a tenant's name or settings; undefined when it does not exist. */
export async function updateTenant(
  orm: Orm,
  tenantId: string,
  changes: { name?: string; pushPreviews?: boolean; storageQuotaBytes?: number | null },
): Promise<TenantRow | undefined> {
  const [row] = await orm
    .update(tenants)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(eq(tenants.id, tenantId))
    .returning();
  return row;
}

/** Deletes a tenant and, by cascade, all of its data; false when it did not exist. */
export async function deleteTenant(orm: Orm, tenantId: string): Promise<boolean> {
  const rows = await orm.delete(tenants).where(eq(tenants.id, tenantId)).returning({ id: tenants.id });
  return rows.length > 0;
}

/** Inserts an api key (its secret's hash only). */
export async function insertApiKey(
  tx: Orm | Tx,
  tenantId: string,
  key: { id: string; secretHash: string },
): Promise<ApiKeyRow> {
  const [row] = await tx
    .insert(apiKeys)
    .values({ tenantId, ...key })
    .returning();
  if (!row) throw new Error('insert into api_keys returned no row');
  return row;
}

/** An api key by its id alone: how a credential is routed to its tenant. */
export async function findApiKey(orm: Orm, keyId: string): Promise<ApiKeyRow | undefined> {
  const [row] = await orm.select().from(apiKeys).where(eq(apiKeys.id, keyId));
  return row;
}

/** A tenant's api keys, oldest first, revoked ones included. */
export function listApiKeys(orm: Orm, tenantId: string): Promise<ApiKeyRow[]> {
  return orm.select().from(apiKeys).where(eq(apiKeys.tenantId, tenantId)).orderBy(asc(apiKeys.id));
}

/** The newest live key of a tenant, used by the CLI to sign tokens. */
export async function findNewestLiveApiKey(orm: Orm, tenantId: string): Promise<ApiKeyRow | undefined> {
  const [row] = await orm
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)))
    .orderBy(sql`${apiKeys.id} DESC`)
    .limit(1);
  return row;
}

/** Revokes a key (idempotently); undefined when the tenant has no such key. */
export async function revokeApiKey(
  orm: Orm,
  tenantId: string,
  keyId: string,
): Promise<ApiKeyRow | undefined> {
  const [row] = await orm
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
    .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, keyId)))
    .returning();
  return row;
}

/** Which of these api keys are live (exist, not revoked); a deleted tenant's keys are gone. */
export async function liveApiKeyIds(orm: Orm, keyIds: readonly string[]): Promise<Set<string>> {
  const live = new Set<string>();
  for (let start = 0; start < keyIds.length; start += 1000) {
    const rows = await orm
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(inArray(apiKeys.id, keyIds.slice(start, start + 1000)), isNull(apiKeys.revokedAt)));
    for (const row of rows) live.add(row.id);
  }
  return live;
}
