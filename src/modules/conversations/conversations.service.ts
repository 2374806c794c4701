import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import { inTenant, inTenantAsUser, tenantDb, type TenantScope } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { AppError, notFound, type FieldError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { cursorText, cursorTimestamp, cursorUuid, decodeCursor, toPage } from '../../http/pagination.ts';
import { assertMetadataSize } from '../../metadata.ts';
import {
  assertAllowed,
  assertMayChangeMember,
  assertMembershipMutable,
  assertNotArchived,
  ROLES,
  type Role,
} from '../access/permissions.ts';
import { loadVisible } from '../access/visibility.ts';
import {
  countOwners,
  deleteMember,
  findLiveUserIds,
  findMembers,
  findSuccessor,
  insertConversation,
  insertMembers,
  listChannels as listChannelRows,
  listMembers as listMemberRows,
  listConversationIdsOfUser,
  listMembershipsOfUser,
  lockConversation,
  readConversationPage,
  updateConversation as updateConversationRow,
  updateMemberRole,
  updateMemberSettings,
  type MemberRow,
} from './conversations.repository.ts';
import type { EventLog } from '../events/event-log.ts';
import { loadConversationView, loadConversationViews } from './conversation-views.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import { assertDirectInput, openDirectConversation } from './direct-conversations.ts';
import { releaseDirectPairsOf } from './direct-conversations.repository.ts';
import {
  conversationEventData,
  memberEvent,
  toListedConversationView,
  toConversationView,
  toMemberView,
} from './conversations.presenter.ts';
import type {
  AddMembersInput,
  CreateConversationInput,
  ListConversationsQuery,
  UpdateConversationInput,
} from './conversations.schemas.ts';

/** Fails with the paths of user ids that are not live users of the tenant. */
async function assertUsersExist(scope: TenantScope, userIds: string[], path: string): Promise<void> {
  const live = await findLiveUserIds(scope, userIds);
  const errors: FieldError[] = userIds.flatMap((id, index) =>
    live.has(id) ? [] : [{ path: `${path}/${index}`, message: `user ${id} does not exist` }],
  );
  if (errors.length > 0) throw new AppError('validation_failed', 'some users do not exist', errors);
}

/** Refuses a change that would leave a group or channel without an OWNER. */
async function assertKeepsAnOwner(
  scope: TenantScope,
  conversationId: string,
  losing: MemberRow,
): Promise<void> {
  if (losing.role === 'OWNER' && (await countOwners(scope, conversationId)) <= 1) {
    throw new AppError(
      'conflict',
      'the last OWNER cannot leave or be demoted; make another member OWNER first',
    );
  }
}

/** Conversations and their members: creation, discovery, settings and the role rules of the contract. */
export function createConversationsService({
  orm,
  events,
  links,
}: {
  orm: Orm;
  events: EventLog;
  links: FileLinker;
}) {
  const run = <T>(ctx: TenantContext, work: (scope: TenantScope, userId: string) => Promise<T>) =>
    inTenantAsUser(orm, ctx, work);

  return {
    /** Creates a conversation (the creator is OWNER), or returns the pair's existing direct one. */
    createConversation(ctx: TenantContext, input: CreateConversationInput) {
      return run(ctx, async (scope, userId) => {
        assertMetadataSize(input.metadata, '/body/metadata');
        if (input.type === 'direct') {
          const other = assertDirectInput(userId, input);
          const opened = await openDirectConversation(scope, events, userId, other, '/body/members/0');
          return {
            conversation: await loadConversationView(
              scope,
              userId,
              opened.conversation,
              opened.member,
              links,
            ),
            created: opened.created,
          };
        }
        if (input.type === 'channel' && input.name === undefined) {
          throw new AppError('validation_failed', 'a channel needs a name', [
            { path: '/body/name', message: 'is required for a channel' },
          ]);
        }
        const others = (input.members ?? []).filter((id) => id !== userId);
        await assertUsersExist(scope, input.members ?? [], '/body/members');
        const conversation = await insertConversation(scope, {
          id: newId(),
          type: input.type,
          name: input.name ?? null,
          topic: input.topic ?? null,
          metadata: input.metadata ?? {},
          createdBy: userId,
          memberCount: 1 + others.length,
        });
        const [owner] = await insertMembers(scope, conversation.id, [
          { userId, role: 'OWNER' },
          ...others.map((id) => ({ userId: id, role: 'MEMBER' as const })),
        ]);
        await events.record(scope, conversation.id, [
          {
            type: 'conversation.created',
            data: { ...conversationEventData(conversation), member_ids: [userId, ...others] },
          },
        ]);
        return { conversation: toConversationView(conversation, owner ?? null), created: true };
      });
    },

    /** The caller's conversations, most recent activity first, with counts and last messages: one round trip. */
    async listConversations(ctx: TenantContext, query: ListConversationsQuery & { limit: number }) {
      const userId = actingUserId(ctx);
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, 2);
      const { rows, reactions } = await readConversationPage(tenantDb(orm, ctx), userId, {
        type: query.type,
        archived: query.archived,
        after: after && { activityAt: cursorTimestamp(after[0]), id: cursorUuid(after[1]) },
        limit: query.limit + 1,
      });
      const page = toPage(rows, query.limit, (row) => [
        row.conversation.lastActivityAt.toISOString(),
        row.conversation.id,
      ]);
      return { ...page, data: page.data.map((row) => toListedConversationView(row, reactions, links)) };
    },

    /** The tenant's channels, newest first, with the caller's role in each (null when not a member). */
    listChannels(ctx: TenantContext, query: { query?: string; cursor?: string; limit: number }) {
      return run(ctx, async (scope, userId) => {
        const beforeId =
          query.cursor === undefined ? undefined : cursorUuid(decodeCursor(query.cursor, 1)[0]);
        const rows = await listChannelRows(scope, userId, {
          prefix: query.query,
          beforeId,
          limit: query.limit + 1,
        });
        const page = toPage(rows, query.limit, (row) => [row.conversation.id]);
        return { ...page, data: await loadConversationViews(scope, userId, page.data, links) };
      });
    },

    getConversation(ctx: TenantContext, conversationId: string) {
      return run(ctx, async (scope, userId) => {
        const { conversation, member } = await loadVisible(scope, conversationId, userId);
        return loadConversationView(scope, userId, conversation, member, links);
      });
    },

    /** Renames, changes the topic or metadata (ADMIN and above). */
    updateConversation(ctx: TenantContext, conversationId: string, input: UpdateConversationInput) {
      return run(ctx, async (scope, userId) => {
        assertMetadataSize(input.metadata, '/body/metadata');
        const { conversation, member, role } = await loadVisible(scope, conversationId, userId, {
          forUpdate: true,
        });
        assertAllowed(role, 'update');
        assertNotArchived(conversation);
        if (conversation.type === 'channel' && input.name === null) {
          throw new AppError('validation_failed', 'a channel needs a name', [
            { path: '/body/name', message: 'cannot be null for a channel' },
          ]);
        }
        const updated = await updateConversationRow(scope, conversationId, input);
        await events.record(scope, conversationId, [
          { type: 'conversation.updated', data: conversationEventData(updated) },
        ]);
        return loadConversationView(scope, userId, updated, member, links);
      });
    },

    /** Soft-deletes a conversation (OWNER): it leaves every list and its id answers 404 from now on. */
    deleteConversation(ctx: TenantContext, conversationId: string) {
      return run(ctx, async (scope, userId) => {
        const { role } = await loadVisible(scope, conversationId, userId, { forUpdate: true });
        assertAllowed(role, 'delete');
        await updateConversationRow(scope, conversationId, { deletedAt: sql`now()` });
        await events.record(scope, conversationId, [
          { type: 'conversation.deleted', data: { id: conversationId } },
        ]);
      });
    },

    /** Archives (read-only) or unarchives a conversation (ADMIN and above); idempotent. */
    setArchived(ctx: TenantContext, conversationId: string, isArchived: boolean) {
      return run(ctx, async (scope, userId) => {
        const { conversation, member, role } = await loadVisible(scope, conversationId, userId, {
          forUpdate: true,
        });
        assertAllowed(role, 'archive');
        if ((conversation.archivedAt !== null) === isArchived)
          return loadConversationView(scope, userId, conversation, member, links);
        const updated = await updateConversationRow(scope, conversationId, {
          archivedAt: isArchived ? sql`now()` : null,
        });
        await events.record(scope, conversationId, [
          { type: 'conversation.updated', data: conversationEventData(updated) },
        ]);
        return loadConversationView(scope, userId, updated, member, links);
      });
    },

    /** Joins a channel as MEMBER; joining one already joined changes nothing. */
    joinChannel(ctx: TenantContext, conversationId: string) {
      return run(ctx, async (scope, userId) => {
        const { conversation, member } = await loadVisible(scope, conversationId, userId, {
          forUpdate: true,
        });
        if (member !== null) return loadConversationView(scope, userId, conversation, member, links);
        assertNotArchived(conversation);
        const [joined] = await insertMembers(scope, conversationId, [{ userId, role: 'MEMBER' }]);
        if (!joined) throw new Error('membership appeared under the conversation lock');
        const updated = await updateConversationRow(scope, conversationId, { memberDelta: 1 });
        await events.record(scope, conversationId, [memberEvent('member.added', joined)]);
        return loadConversationView(scope, userId, updated, joined, links);
      });
    },

    /** Leaves a group or channel; the last OWNER must hand over first. */
    leaveConversation(ctx: TenantContext, conversationId: string) {
      return run(ctx, async (scope, userId) => {
        const { conversation, member } = await loadVisible(scope, conversationId, userId, {
          forUpdate: true,
        });
        if (member === null) throw notFound('membership');
        assertMembershipMutable(conversation.type);
        await assertKeepsAnOwner(scope, conversationId, member);
        if (await deleteMember(scope, conversationId, userId)) {
          await updateConversationRow(scope, conversationId, { memberDelta: -1 });
          await events.record(scope, conversationId, [memberEvent('member.removed', { userId })]);
        }
      });
    },

    /** Members of a conversation the caller can see, ordered by user id. */
    listMembers(ctx: TenantContext, conversationId: string, query: { cursor?: string; limit: number }) {
      return run(ctx, async (scope, userId) => {
        await loadVisible(scope, conversationId, userId);
        const afterUserId =
          query.cursor === undefined ? undefined : cursorText(decodeCursor(query.cursor, 1)[0]);
        const rows = await listMemberRows(scope, conversationId, { afterUserId, limit: query.limit + 1 });
        const page = toPage(rows, query.limit, (row) => [row.userId]);
        return { ...page, data: page.data.map(toMemberView) };
      });
    },

    /** Adds users (existing members are left as they are); returns the membership of each named user. */
    addMembers(ctx: TenantContext, conversationId: string, input: AddMembersInput) {
      return run(ctx, async (scope, userId) => {
        const { conversation, role } = await loadVisible(scope, conversationId, userId, { forUpdate: true });
        const newRole: Role = input.role ?? 'MEMBER';
        assertMayChangeMember(role, null, newRole);
        assertMembershipMutable(conversation.type);
        assertNotArchived(conversation);
        await assertUsersExist(scope, input.user_ids, '/body/user_ids');
        const added = await insertMembers(
          scope,
          conversationId,
          input.user_ids.map((id) => ({ userId: id, role: newRole })),
        );
        if (added.length > 0) {
          await updateConversationRow(scope, conversationId, { memberDelta: added.length });
          await events.record(
            scope,
            conversationId,
            added.map((member) => memberEvent('member.added', member)),
          );
        }
        const members = await findMembers(scope, conversationId, input.user_ids);
        return { data: members.map(toMemberView) };
      });
    },

    /** Changes a member's role within the role rules; never leaves the conversation without an OWNER. */
    updateMember(ctx: TenantContext, conversationId: string, targetUserId: string, input: { role: Role }) {
      return run(ctx, async (scope, userId) => {
        const { conversation, role } = await loadVisible(scope, conversationId, userId, { forUpdate: true });
        assertAllowed(role, 'manage_members');
        assertMembershipMutable(conversation.type);
        const [target] = await findMembers(scope, conversationId, [targetUserId]);
        if (!target) throw notFound('member');
        assertMayChangeMember(role, target.role, input.role);
        assertNotArchived(conversation);
        if (input.role !== 'OWNER') await assertKeepsAnOwner(scope, conversationId, target);
        const updated = await updateMemberRole(scope, conversationId, targetUserId, input.role);
        if (!updated) throw notFound('member');
        if (updated.role !== target.role) {
          await events.record(scope, conversationId, [memberEvent('member.updated', updated)]);
        }
        return toMemberView(updated);
      });
    },

    /** Removes a member (ADMIN and above, within the role rules); removing oneself is leaving. */
    removeMember(ctx: TenantContext, conversationId: string, targetUserId: string) {
      return run(ctx, async (scope, userId) => {
        const { conversation, role } = await loadVisible(scope, conversationId, userId, { forUpdate: true });
        assertMembershipMutable(conversation.type);
        const [target] = await findMembers(scope, conversationId, [targetUserId]);
        if (targetUserId !== userId) {
          assertAllowed(role, 'manage_members');
          if (!target) throw notFound('member');
          assertMayChangeMember(role, target.role, null);
          assertNotArchived(conversation);
        } else if (!target) {
          throw notFound('membership');
        }
        await assertKeepsAnOwner(scope, conversationId, target);
        if (await deleteMember(scope, conversationId, targetUserId)) {
          await updateConversationRow(scope, conversationId, { memberDelta: -1 });
          await events.record(scope, conversationId, [
            memberEvent('member.removed', { userId: targetUserId }),
          ]);
        }
      });
    },

    /** The caller's own settings in a conversation it belongs to. */
    updateSettings(ctx: TenantContext, conversationId: string, input: { muted_until: string | null }) {
      return run(ctx, async (scope, userId) => {
        const { conversation, member } = await loadVisible(scope, conversationId, userId);
        if (member === null) throw notFound('membership');
        const mutedUntil = input.muted_until === null ? null : new Date(input.muted_until);
        const updated = await updateMemberSettings(scope, conversationId, userId, { mutedUntil });
        return loadConversationView(scope, userId, conversation, updated ?? member, links);
      });
    },

    /**
     * The ids of the conversations a user is a member of: what the user's sockets follow. With
     * `exceptChannels`, only its direct and group ones, whose members see its presence. For the real-time
     * hub, which asks about the users of its authenticated sockets (and the users whose presence changed).
     */
    listConversationIdsOfUser(tenantId: string, userId: string, options: { exceptChannels?: boolean } = {}) {
      return inTenant(orm, tenantId, (scope) => listConversationIdsOfUser(scope, userId, options));
    },
  };
}

export type ConversationsService = ReturnType<typeof createConversationsService>;

/**
 * Removes an erased user from every conversation, in the eraser's transaction. Where the user was the last
 * OWNER, the longest-standing ADMIN (else MEMBER) becomes OWNER, so no group is left without one.
 */
export async function removeUserFromAllConversations(
  scope: TenantScope,
  events: EventLog,
  userId: string,
): Promise<void> {
  // Ordered by conversation id, so concurrent erasures lock conversations in one order and cannot deadlock.
  for (const { conversationId } of await listMembershipsOfUser(scope, userId)) {
    await lockConversation(scope, conversationId);
    // Re-read under the lock: the role may have changed since the list was read.
    const [membership] = await findMembers(scope, conversationId, [userId]);
    if (!membership) continue;
    const wasLastOwner = membership.role === 'OWNER' && (await countOwners(scope, conversationId)) === 1;
    await deleteMember(scope, conversationId, userId);
    await updateConversationRow(scope, conversationId, { memberDelta: -1 });
    const changes = [memberEvent('member.removed', { userId })];
    if (wasLastOwner) {
      const successor = await findSuccessor(scope, conversationId, userId, ROLES);
      if (successor) {
        await updateMemberRole(scope, conversationId, successor.userId, 'OWNER');
        changes.push(memberEvent('member.updated', { userId: successor.userId, role: 'OWNER' }));
      }
    }
    await events.record(scope, conversationId, changes);
  }
  // The pair's direct conversations stay with the other member, but no longer hold the pair's slot: a user
  // re-created with the same id starts a new direct conversation.
  await releaseDirectPairsOf(scope, userId);
}
