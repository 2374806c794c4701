import type { CredentialChange } from '../auth/credential-cache.ts';
import type { Static } from 'typebox';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import type { TenantContext } from '../../context.ts';
import { AppError, notFound } from '../../errors.ts';
import { assertMetadataSize } from '../../metadata.ts';
import { listMembershipsOfUser, lockConversationsOfUser } from '../conversations/conversations.repository.ts';
import { removeUserFromAllConversations } from '../conversations/conversations.service.ts';
import type { EventLog } from '../events/event-log.ts';
import { redactEventsOfSender } from '../events/events.repository.ts';
import { listMessagesOf, redactMessagesOf } from '../messages/messages.repository.ts';
import { listReactionsOf } from '../reactions/reactions.repository.ts';
import { cursorText, decodeCursor, toPage } from '../../http/pagination.ts';
import {
  ensureUserRow,
  eraseUserRow,
  findUser,
  searchUsers,
  upsertUserRow,
  type UserProfilePatch,
  type UserRow,
} from './users.repository.ts';
import type { UpsertUserBody, User, UserExport } from './users.schemas.ts';

/** A user as the API shows it. */
export type UserView = Static<typeof User>;

/** Input of `upsertUser`: each field optional; omitted fields keep their value, null clears. */
export type UpsertUserInput = Static<typeof UpsertUserBody>;

const toUserView = (row: UserRow): UserView => ({
  id: row.id,
  name: row.name,
  avatar_url: row.avatarUrl,
  metadata: row.metadata,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
});

const requireBackend = (ctx: TenantContext, action: string) => {
  if (ctx.actor.kind !== 'backend') throw new AppError('forbidden', `only the tenant backend may ${action}`);
};

export interface UsersServiceDeps {
  orm: Orm;
  events: EventLog;
  /** Told after a user is erased, so no process keeps letting its credentials in from a cache. */
  onCredentialsChanged: (change: CredentialChange) => void;
}

/** User use cases: profiles, lookup, erasure and export. */
export function createUsersService({ orm, events, onCredentialsChanged }: UsersServiceDeps) {
  return {
    /** Creates a user the first time a credential names it; tells whether it was erased. */
    ensureUser(tenantId: string, userId: string): Promise<'active' | 'erased'> {
      return inTenant(orm, tenantId, (scope) => ensureUserRow(scope, userId));
    },

    /** Creates or updates a profile (tenant backend only). */
    async upsertUser(
      ctx: TenantContext,
      userId: string,
      input: UpsertUserInput,
    ): Promise<{ user: UserView; created: boolean }> {
      requireBackend(ctx, 'update user profiles');
      assertMetadataSize(input.metadata, '/body/metadata');
      const patch: UserProfilePatch = {
        name: input.name,
        avatarUrl: input.avatar_url,
        metadata: input.metadata,
      };
      const { row, created } = await inTenant(orm, ctx.tenantId, (scope) =>
        upsertUserRow(scope, userId, patch),
      );
      return { user: toUserView(row), created };
    },

    /** Any live user of the caller's tenant. */
    async getUser(ctx: TenantContext, userId: string): Promise<UserView> {
      const row = await inTenant(orm, ctx.tenantId, (scope) => findUser(scope, userId));
      if (!row) throw notFound('user');
      return toUserView(row);
    },

    /** Users whose id or name starts with `query`, ordered by id, keyset paged. */
    async listUsers(ctx: TenantContext, input: { query?: string; cursor?: string; limit: number }) {
      const afterId = input.cursor === undefined ? undefined : cursorText(decodeCursor(input.cursor, 1)[0]);
      const rows = await inTenant(orm, ctx.tenantId, (scope) =>
        searchUsers(scope, { prefix: input.query, afterId, limit: input.limit + 1 }),
      );
      return toPage(rows.map(toUserView), input.limit, (user) => [user.id]);
    },

    /**
     * Erases a user (tenant backend only): profile, memberships and reactions go, messages become tombstones
     * (seq kept), and the user's credentials stop working.
     */
    async eraseUser(ctx: TenantContext, userId: string): Promise<void> {
      requireBackend(ctx, 'erase users');
      await inTenant(orm, ctx.tenantId, async (scope) => {
        if (!(await eraseUserRow(scope, userId))) throw notFound('user');
        await lockConversationsOfUser(scope, userId);
        await removeUserFromAllConversations(scope, events, userId);
        await redactMessagesOf(scope, userId);
        await redactEventsOfSender(scope, userId);
      });
      onCredentialsChanged({ kind: 'user_erased', tenantId: ctx.tenantId, userId });
    },

    /** Everything Parley stores about a user (tenant backend only), for data-subject access requests. */
    async exportUser(ctx: TenantContext, userId: string): Promise<Static<typeof UserExport>> {
      requireBackend(ctx, 'export users');
      return inTenant(orm, ctx.tenantId, async (scope) => {
        const row = await findUser(scope, userId);
        if (!row) throw notFound('user');
        const memberships = await listMembershipsOfUser(scope, userId);
        const sent = await listMessagesOf(scope, userId);
        const reactions = await listReactionsOf(scope, userId);
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
            created_at: message.createdAt.toISOString(),
            edited_at: message.editedAt?.toISOString() ?? null,
            deleted_at: message.deletedAt?.toISOString() ?? null,
          })),
          reactions: reactions.map((reaction) => ({
            message_id: reaction.messageId,
            emoji: reaction.emoji,
            created_at: reaction.createdAt.toISOString(),
          })),
          exported_at: new Date().toISOString(),
        };
      });
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
