import { and, asc, eq, getTableColumns, gt, inArray, isNotNull, isNull, like, or, sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';
import { users } from '../../db/schema/users.ts';

export type UserRow = typeof users.$inferSelect;

/** Fields of a profile a tenant backend may set; `undefined` leaves a field as it is. */
export interface UserProfilePatch {
  name?: string | null | undefined;
  avatarUrl?: string | null | undefined;
  metadata?: Record<string, unknown> | undefined;
}

const isLive = isNull(users.deletedAt);
const byId = (scope: TenantScope, userId: string) =>
  and(eq(users.tenantId, scope.tenantId), eq(users.id, userId));

/** Creates the user if it is new; tells whether it is usable or was erased. One round trip. */
export async function ensureUserRow(scope: TenantScope, userId: string): Promise<'active' | 'erased'> {
  const result = await scope.tx.execute(sql`
    WITH inserted AS (
      INSERT INTO users (tenant_id, id) VALUES (${scope.tenantId}, ${userId})
      ON CONFLICT (tenant_id, id) DO NOTHING
      RETURNING false AS erased
    )
    SELECT erased FROM inserted
    UNION ALL
    SELECT deleted_at IS NOT NULL FROM users WHERE tenant_id = ${scope.tenantId} AND id = ${userId}
    LIMIT 1`);
  return rowsOf<{ erased: boolean }>(result)[0]?.erased === true ? 'erased' : 'active';
}

/** Inserts or updates a profile (reviving an erased user); `created` is true for a new row. */
export async function upsertUserRow(
  scope: TenantScope,
  userId: string,
  patch: UserProfilePatch,
): Promise<{ row: UserRow; created: boolean }> {
  const [result] = await scope.tx
    .insert(users)
    .values({
      tenantId: scope.tenantId,
      id: userId,
      name: patch.name ?? null,
      avatarUrl: patch.avatarUrl ?? null,
      metadata: patch.metadata ?? {},
    })
    .onConflictDoUpdate({
      target: [users.tenantId, users.id],
      set: {
        ...(patch.name !== undefined ? { name: sql`excluded.name` } : {}),
        ...(patch.avatarUrl !== undefined ? { avatarUrl: sql`excluded.avatar_url` } : {}),
        ...(patch.metadata !== undefined ? { metadata: sql`excluded.metadata` } : {}),
        updatedAt: sql`now()`,
        deletedAt: null,
      },
    })
    .returning({ ...getTableColumns(users), created: sql<boolean>`(xmax = 0)` });
  if (!result) throw new Error('upsert into users returned no row');
  const { created, ...row } = result;
  return { row, created };
}

/** A live user by id. */
export async function findUser(scope: TenantScope, userId: string): Promise<UserRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(users)
    .where(and(byId(scope, userId), isLive));
  return row;
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/** Live users whose id, or name ignoring case, starts with `prefix`; ordered by id, after `afterId`. */
export function searchUsers(
  scope: TenantScope,
  query: { prefix: string | undefined; afterId: string | undefined; limit: number },
): Promise<UserRow[]> {
  const pattern = query.prefix === undefined ? undefined : `${escapeLike(query.prefix)}%`;
  return scope.tx
    .select()
    .from(users)
    .where(
      and(
        eq(users.tenantId, scope.tenantId),
        isLive,
        query.afterId === undefined ? undefined : gt(users.id, query.afterId),
        pattern === undefined
          ? undefined
          : or(like(users.id, pattern), like(sql`lower(${users.name})`, pattern.toLowerCase())),
      ),
    )
    .orderBy(asc(users.id))
    .limit(query.limit);
}

/** Erases a profile, keeping a tombstone row so references stay valid; false when there is no live user. */
export async function eraseUserRow(scope: TenantScope, userId: string): Promise<boolean> {
  const rows = await scope.tx
    .update(users)
    .set({ name: null, avatarUrl: null, metadata: {}, deletedAt: sql`now()`, updatedAt: sql`now()` })
    .where(and(byId(scope, userId), isLive))
    .returning({ id: users.id });
  return rows.length > 0;
}

/** Which of these users of the scope's tenant were erased. */
export async function erasedUserIds(scope: TenantScope, userIds: readonly string[]): Promise<string[]> {
  const erased: string[] = [];
  for (let start = 0; start < userIds.length; start += 1000) {
    const rows = await scope.tx
      .select({ id: users.id })
      .from(users)
      .where(
        and(
          eq(users.tenantId, scope.tenantId),
          inArray(users.id, userIds.slice(start, start + 1000)),
          isNotNull(users.deletedAt),
        ),
      );
    for (const row of rows) erased.push(row.id);
  }
  return erased;
}
