import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { requireBackend, type TenantContext } from '../../context.ts';
import { notFound } from '../../errors.ts';
import type { CredentialChange } from '../auth/credential-cache.ts';
import { lockConversationsOfUser } from '../conversations/conversations.repository.ts';
import { removeUserFromAllConversations } from '../conversations/conversations.service.ts';
import type { EventLog } from '../events/event-log.ts';
import { redactEventsOfSender } from '../events/events.repository.ts';
import { redactMessagesOf } from '../messages/messages.repository.ts';
import { deleteAttachmentsOf } from '../attachments/attachments.repository.ts';
import { deleteUploadsOf } from '../attachments/uploads.repository.ts';
import { deleteSubscriptionsOf } from '../push/push.repository.ts';
import { eraseUserRow } from './users.repository.ts';

// Erasing a user reaches into every module that holds something of theirs (their profile, memberships,
// messages, reactions, logged events and push subscriptions): the one place that does, in one transaction.

export interface UserErasureDeps {
  orm: Orm;
  events: EventLog;
  /** Told after a user is erased, so no process keeps letting its credentials in from a cache. */
  onCredentialsChanged: (change: CredentialChange) => void;
}

/** The erasure use case (DELETE /v1/users/{id}). */
export function createUserErasure({ orm, events, onCredentialsChanged }: UserErasureDeps) {
  return {
    /**
     * Erases a user (tenant backend only): profile, memberships, reactions and push subscriptions go,
     * messages become tombstones (seq kept), and the user's credentials stop working.
     */
    async eraseUser(ctx: TenantContext, userId: string): Promise<void> {
      requireBackend(ctx, 'erase users');
      await inTenant(orm, ctx.tenantId, async (scope) => {
        if (!(await eraseUserRow(scope, userId))) throw notFound('user');
        // Every conversation the user is in or sent to, locked in id order before any of them changes.
        await lockConversationsOfUser(scope, userId);
        await removeUserFromAllConversations(scope, events, userId);
        await redactMessagesOf(scope, userId);
        // Their files, sent or not, and uploads under way: the rows now, the bytes by background work (the
        // rows' triggers queue them).
        await deleteAttachmentsOf(scope, userId);
        await deleteUploadsOf(scope, userId);
        await redactEventsOfSender(scope, userId);
        await deleteSubscriptionsOf(scope, userId);
      });
      onCredentialsChanged({ kind: 'user_erased', tenantId: ctx.tenantId, userId });
    },
  };
}

export type UserErasure = ReturnType<typeof createUserErasure>;
