import { and, eq, isNull, sql } from 'drizzle-orm';
import { conversations } from '../../db/schema/conversations.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';
import type { ConversationRow } from './conversations.repository.ts';

// The queries of direct conversations, by the key of their pair (direct-conversations.ts makes it).

/**
 * Inserts the direct conversation of a pair unless one exists; returns undefined when it did. The partial
 * unique index on direct_key makes two racing creations converge on one row.
 */
export async function insertDirectConversation(
  scope: TenantScope,
  values: { id: string; directKey: string; createdBy: string },
): Promise<ConversationRow | undefined> {
  const [row] = await scope.tx
    .insert(conversations)
    .values({ tenantId: scope.tenantId, type: 'direct', memberCount: 2, ...values })
    .onConflictDoNothing({
      target: [conversations.tenantId, conversations.directKey],
      where: sql`${conversations.directKey} IS NOT NULL AND ${conversations.deletedAt} IS NULL`,
    })
    .returning();
  return row;
}

/** The live direct conversation of a pair. */
export async function findDirectConversation(
  scope: TenantScope,
  directKey: string,
): Promise<ConversationRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(conversations)
    .where(
      and(
        eq(conversations.tenantId, scope.tenantId),
        eq(conversations.directKey, directKey),
        isNull(conversations.deletedAt),
      ),
    );
  return row;
}

/**
 * Frees the direct-pair slots of a user's direct conversations (erasure): each keeps a key unique to
 * itself, so the pair's unique index no longer finds it and a new direct conversation can be opened.
 */
export async function releaseDirectPairsOf(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE conversations SET direct_key = '#released:' || id::text
    WHERE tenant_id = ${scope.tenantId} AND type = 'direct'
      AND direct_key NOT LIKE '#released:%'
      AND ${userId} IN (split_part(direct_key, ' ', 1), split_part(direct_key, ' ', 2))`);
}
