import type { Static } from 'typebox';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { requireBackend, type TenantContext } from '../../context.ts';
import { notFound } from '../../errors.ts';
import { listMembershipsOfUser } from '../conversations/conversations.repository.ts';
import { listMessagesOf } from '../messages/messages.repository.ts';
import { listSubscriptions } from '../push/push.repository.ts';
import { toPushSubscription } from '../push/push.service.ts';
import { listReactionsOf } from '../reactions/reactions.repository.ts';
import { findUser } from './users.repository.ts';
import { toUserView } from './users.presenter.ts';
import type { UserExport } from './users.schemas.ts';

// Exporting a user reads what every module holds of theirs (profile, memberships, messages, reactions, push
// subscriptions): the one place that does, in one transaction, so the export is one consistent picture.

/** The export use case (GET /v1/users/{id}/export), for data-subject access requests. */
export function createUserExport({ orm }: { orm: Orm }) {
  return {
    /** Everything Parley stores about a user (tenant backend only). */
    async exportUser(ctx: TenantContext, userId: string): Promise<Static<typeof UserExport>> {
      requireBackend(ctx, 'export users');
      return inTenant(orm, ctx.tenantId, async (scope) => {
        const row = await findUser(scope, userId);
        if (!row) throw notFound('user');
        const memberships = await listMembershipsOfUser(scope, userId);
        const sent = await listMessagesOf(scope, userId);
        const reactions = await listReactionsOf(scope, userId);
        const subscriptions = await listSubscriptions(scope, userId);
        return {
          user: toUserView(row),
          memberships: memberships.map((member) => ({
            conversation_id: member.conversationId,
            role: member.role,
            joined_at: member.joinedAt.toISOString(),
            last_read_seq: member.lastReadSeq,
            muted_until: member.mutedUntil?.toISOString() ?? null,
          })),
          messages: sent.map((message) => ({
            id: message.id,
            conversation_id: message.conversationId,
            seq: message.seq,
            text: message.text,
            thread_root_id: message.threadRootId,
            metadata: message.metadata,
            attachments: message.attachments.map((attachment) => ({
              id: attachment.id,
              name: attachment.name,
              content_type: attachment.content_type,
              size: attachment.size,
              sha256: attachment.sha256,
              created_at: attachment.created_at,
            })),
            created_at: message.createdAt.toISOString(),
            edited_at: message.editedAt?.toISOString() ?? null,
            deleted_at: message.deletedAt?.toISOString() ?? null,
          })),
          reactions: reactions.map((reaction) => ({
            message_id: reaction.messageId,
            emoji: reaction.emoji,
            created_at: reaction.createdAt.toISOString(),
          })),
          push_subscriptions: subscriptions.map(toPushSubscription),
          exported_at: new Date().toISOString(),
        };
      });
    },
  };
}

export type UserExporter = ReturnType<typeof createUserExport>;
