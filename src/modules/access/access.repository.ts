import { and, eq, isNull } from 'drizzle-orm';
import { conversationMembers, conversations } from '../../db/schema/conversations.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';
import type { ConversationWithMembership } from '../conversations/conversations.repository.ts';

// The queries the access rules need: a conversation together with the asking user's membership in it.

const conversationKey = (scope: TenantScope, conversationId: string) =>
  and(
    eq(conversations.tenantId, scope.tenantId),
    eq(conversations.id, conversationId),
    isNull(conversations.deletedAt),
  );

/**
 * A live conversation and the user's membership. With `forUpdate` the conversation row is locked first and
 * the membership read after, in its own statement: a locking read re-checks only the locked row after a
 * wait, so a membership joined into the same statement could be stale.
 */
export async function findConversationForUser(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ConversationWithMembership | undefined> {
  if (options.forUpdate) {
    const [conversation] = await scope.tx
      .select()
      .from(conversations)
      .where(conversationKey(scope, conversationId))
      .for('update');
    if (!conversation) return undefined;
    const [member] = await scope.tx
      .select()
      .from(conversationMembers)
      .where(
        and(
          eq(conversationMembers.tenantId, scope.tenantId),
          eq(conversationMembers.conversationId, conversationId),
          eq(conversationMembers.userId, userId),
        ),
      );
    return { conversation, member: member ?? null };
  }
  const [row] = await scope.tx
    .select({ conversation: conversations, member: conversationMembers })
    .from(conversations)
    .leftJoin(
      conversationMembers,
      and(
        eq(conversationMembers.tenantId, conversations.tenantId),
        eq(conversationMembers.conversationId, conversations.id),
        eq(conversationMembers.userId, userId),
      ),
    )
    .where(conversationKey(scope, conversationId));
  return row;
}
