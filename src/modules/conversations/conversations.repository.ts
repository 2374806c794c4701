import { and, asc, desc, eq, gt, isNull, like, lt, ne, sql, type SQL } from 'drizzle-orm';
import { conversationMembers, conversations } from '../../db/schema/conversations.ts';
import { users } from '../../db/schema/users.ts';
import { rowsOf } from '../../db/client.ts';
import { rowFromJson } from '../../db/json-rows.ts';
import { messages } from '../../db/schema/messages.ts';
import { arrayParam, isAnyOf } from '../../db/params.ts';
import type { TenantDb, TenantScope } from '../../db/tenant-scope.ts';
import type { StoredMessage } from '../messages/messages.repository.ts';
import {
  reactionsFromJson,
  type ReactionsByMessage,
  type ReactionSummaryJson,
} from '../reactions/reactions.repository.ts';
import type { ConversationType, Role } from '../access/permissions.ts';

export type ConversationRow = typeof conversations.$inferSelect;
export type MemberRow = typeof conversationMembers.$inferSelect;

/** A conversation with the viewing user's membership in it, if any. */
export interface ConversationWithMembership {
  conversation: ConversationRow;
  member: MemberRow | null;
}

const isLive = isNull(conversations.deletedAt);
/** The membership rows of one conversation. */
const membersIn = (scope: TenantScope, conversationId: string) =>
  and(
    eq(conversationMembers.tenantId, scope.tenantId),
    eq(conversationMembers.conversationId, conversationId),
  );
/** Joins a conversation to one user's membership row in it. */
const membershipOf = (userId: string) =>
  and(
    eq(conversationMembers.tenantId, conversations.tenantId),
    eq(conversationMembers.conversationId, conversations.id),
    eq(conversationMembers.userId, userId),
  );
const conversationKey = (scope: TenantScope, conversationId: string) =>
  and(eq(conversations.tenantId, scope.tenantId), eq(conversations.id, conversationId));
const memberKey = (scope: TenantScope, conversationId: string, userId: string) =>
  and(membersIn(scope, conversationId), eq(conversationMembers.userId, userId));

/** Inserts a conversation. */
export async function insertConversation(
  scope: TenantScope,
  values: {
    id: string;
    type: ConversationType;
    name: string | null;
    topic: string | null;
    metadata: Record<string, unknown>;
    createdBy: string;
    memberCount: number;
  },
): Promise<ConversationRow> {
  const [row] = await scope.tx
    .insert(conversations)
    .values({ tenantId: scope.tenantId, ...values })
    .returning();
  if (!row) throw new Error('insert into conversations returned no row');
  return row;
}

/** Adds members, skipping users who already are; returns the rows actually inserted. */
export function insertMembers(
  scope: TenantScope,
  conversationId: string,
  members: { userId: string; role: Role }[],
): Promise<MemberRow[]> {
  if (members.length === 0) return Promise.resolve([]);
  return scope.tx
    .insert(conversationMembers)
    .values(members.map((member) => ({ tenantId: scope.tenantId, conversationId, ...member })))
    .onConflictDoNothing()
    .returning();
}

/** Members of a conversation among `userIds`. */
export function findMembers(
  scope: TenantScope,
  conversationId: string,
  userIds: string[],
): Promise<MemberRow[]> {
  return scope.tx
    .select()
    .from(conversationMembers)
    .where(and(membersIn(scope, conversationId), isAnyOf(conversationMembers.userId, userIds, 'text')));
}

/** Removes a member; false when it was not one. */
export async function deleteMember(
  scope: TenantScope,
  conversationId: string,
  userId: string,
): Promise<boolean> {
  const rows = await scope.tx
    .delete(conversationMembers)
    .where(memberKey(scope, conversationId, userId))
    .returning({ userId: conversationMembers.userId });
  return rows.length > 0;
}

/** Sets a member's role. */
export async function updateMemberRole(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  role: Role,
): Promise<MemberRow | undefined> {
  const [row] = await scope.tx
    .update(conversationMembers)
    .set({ role })
    .where(memberKey(scope, conversationId, userId))
    .returning();
  return row;
}

/** Sets a member's personal settings. */
export async function updateMemberSettings(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  settings: { mutedUntil: Date | null },
): Promise<MemberRow | undefined> {
  const [row] = await scope.tx
    .update(conversationMembers)
    .set(settings)
    .where(memberKey(scope, conversationId, userId))
    .returning();
  return row;
}

/** How many OWNERs a conversation has. Call with the conversation row locked. */
export async function countOwners(scope: TenantScope, conversationId: string): Promise<number> {
  const [row] = await scope.tx
    .select({ n: sql<number>`count(*)::int` })
    .from(conversationMembers)
    .where(and(membersIn(scope, conversationId), eq(conversationMembers.role, 'OWNER')));
  return row?.n ?? 0;
}

/** Updates a conversation's fields; `memberDelta` adjusts the member count. Call with the row locked. */
export async function updateConversation(
  scope: TenantScope,
  conversationId: string,
  changes: {
    name?: string | null;
    topic?: string | null;
    metadata?: Record<string, unknown>;
    archivedAt?: Date | SQL | null;
    deletedAt?: SQL;
    memberDelta?: number;
  },
): Promise<ConversationRow> {
  const { memberDelta, ...fields } = changes;
  const [row] = await scope.tx
    .update(conversations)
    .set({
      ...fields,
      ...(memberDelta === undefined
        ? {}
        : { memberCount: sql`${conversations.memberCount} + ${memberDelta}` }),
      ...(memberDelta === undefined ? { updatedAt: sql`now()` } : {}),
    })
    .where(conversationKey(scope, conversationId))
    .returning();
  if (!row) throw new Error('conversation vanished under its own lock');
  return row;
}

/** A page of members ordered by user id, after `afterUserId`. */
export function listMembers(
  scope: TenantScope,
  conversationId: string,
  page: { afterUserId: string | undefined; limit: number },
): Promise<MemberRow[]> {
  return scope.tx
    .select()
    .from(conversationMembers)
    .where(
      and(
        membersIn(scope, conversationId),
        page.afterUserId === undefined ? undefined : gt(conversationMembers.userId, page.afterUserId),
      ),
    )
    .orderBy(asc(conversationMembers.userId))
    .limit(page.limit);
}

/** One row of a conversation-list page: the conversation, the caller's membership, counts, last message. */
export interface ConversationListRow {
  conversation: ConversationRow;
  member: MemberRow;
  unreadCount: number;
  mentionCount: number;
  /** The latest main-timeline message, or null before the first. */
  lastMessage: StoredMessage | null;
}

/**
 * A page of a user's conversations, most recent activity first, after the (activity, id) keyset cursor, in
 * one round trip: the parley_conversation_list function (src/db/functions), which sets the tenant itself
 * and commits on its own. Each row carries its unread and mention counts and its last main-timeline message;
 * `reactions` are those messages' reactions as the user sees them.
 */
export async function readConversationPage(
  tenant: TenantDb,
  userId: string,
  query: {
    type: ConversationType | undefined;
    archived: boolean | undefined;
    after: { activityAt: string; id: string } | undefined;
    limit: number;
  },
): Promise<{ rows: ConversationListRow[]; reactions: ReactionsByMessage }> {
  const result = await tenant.db.execute(sql`SELECT parley_conversation_list(
    ${tenant.tenantId}::uuid, ${userId}::text, ${query.type ?? null}::text, ${query.archived ?? null}::boolean,
    ${query.after?.activityAt ?? null}::timestamptz, ${query.after?.id ?? null}::uuid, ${query.limit}::integer
  ) AS page`);
  const [row] = rowsOf<{ page: ConversationPageJson }>(result);
  if (!row) throw new Error('parley_conversation_list returned no row');
  return {
    rows: row.page.rows.map((item) => ({
      conversation: rowFromJson(conversations, item.conversation),
      member: rowFromJson(conversationMembers, item.member),
      unreadCount: item.unread_count,
      mentionCount: item.mention_count,
      lastMessage: item.last_message === null ? null : rowFromJson(messages, item.last_message),
    })),
    reactions: reactionsFromJson(row.page.reactions),
  };
}

/** parley_conversation_list's answer as JSON. */
interface ConversationPageJson {
  rows: {
    conversation: Record<string, unknown>;
    member: Record<string, unknown>;
    unread_count: number;
    mention_count: number;
    last_message: Record<string, unknown> | null;
  }[];
  reactions: ReactionSummaryJson[];
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/** A page of the tenant's live channels (newest first) with the user's membership, optionally by name prefix. */
export function listChannels(
  scope: TenantScope,
  userId: string,
  query: { prefix: string | undefined; beforeId: string | undefined; limit: number },
): Promise<ConversationWithMembership[]> {
  return scope.tx
    .select({ conversation: conversations, member: conversationMembers })
    .from(conversations)
    .leftJoin(conversationMembers, membershipOf(userId))
    .where(
      and(
        eq(conversations.tenantId, scope.tenantId),
        eq(conversations.type, 'channel'),
        isLive,
        query.beforeId === undefined ? undefined : lt(conversations.id, query.beforeId),
        query.prefix === undefined
          ? undefined
          : like(sql`lower(${conversations.name})`, `${escapeLike(query.prefix.toLowerCase())}%`),
      ),
    )
    .orderBy(desc(conversations.id))
    .limit(query.limit);
}

/** Which of `userIds` are live users of the tenant. */
export async function findLiveUserIds(scope: TenantScope, userIds: string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await scope.tx
    .select({ id: users.id })
    .from(users)
    .where(
      and(eq(users.tenantId, scope.tenantId), isAnyOf(users.id, userIds, 'text'), isNull(users.deletedAt)),
    );
  return new Set(rows.map((row) => row.id));
}

/** Every membership of a user, by conversation id; used when the user is erased. */
export function listMembershipsOfUser(scope: TenantScope, userId: string): Promise<MemberRow[]> {
  return scope.tx
    .select()
    .from(conversationMembers)
    .where(and(eq(conversationMembers.tenantId, scope.tenantId), eq(conversationMembers.userId, userId)))
    .orderBy(asc(conversationMembers.conversationId));
}

/**
 * The ids of the conversations a user is a member of (what its sockets follow); with `exceptChannels`,
 * only its direct and group ones (whose members see its presence).
 */
export async function listConversationIdsOfUser(
  scope: TenantScope,
  userId: string,
  options: { exceptChannels?: boolean } = {},
): Promise<string[]> {
  const rows = await scope.tx
    .select({ id: conversations.id })
    .from(conversations)
    .innerJoin(conversationMembers, membershipOf(userId))
    .where(
      and(
        eq(conversations.tenantId, scope.tenantId),
        options.exceptChannels === true ? ne(conversations.type, 'channel') : undefined,
      ),
    );
  return rows.map((row) => row.id);
}

/** Locks a conversation row, deleted or not, for a change to its membership. */
export async function lockConversation(scope: TenantScope, conversationId: string): Promise<void> {
  await scope.tx
    .select({ id: conversations.id })
    .from(conversations)
    .where(conversationKey(scope, conversationId))
    .for('update');
}

/**
 * Locks, in id order, every conversation a user is a member of or has sent to, as an erasure does before
 * changing any of them: the unread counters (src/db/functions/parley_unread_scan.sql) stay exact only if
 * whatever changes a conversation's messages or watermarks holds its row lock, and one order keeps
 * concurrent erasures from deadlocking.
 */
export async function lockConversationsOfUser(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(sql`
    SELECT c.id FROM conversations c
    WHERE c.tenant_id = ${scope.tenantId} AND c.id IN (
      SELECT m.conversation_id FROM conversation_members m
      WHERE m.tenant_id = ${scope.tenantId} AND m.user_id = ${userId}
      UNION
      SELECT x.conversation_id FROM messages x
      WHERE x.tenant_id = ${scope.tenantId} AND x.sender_id = ${userId})
    ORDER BY c.id
    FOR UPDATE OF c`);
}

/**
 * Who inherits OWNER: the member of the highest role in `rolesHighestFirst` (the permission table's ROLES),
 * the longest-standing among equals, other than `exceptUserId`.
 */
export async function findSuccessor(
  scope: TenantScope,
  conversationId: string,
  exceptUserId: string,
  rolesHighestFirst: readonly Role[],
): Promise<MemberRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(conversationMembers)
    .where(and(membersIn(scope, conversationId), sql`${conversationMembers.userId} <> ${exceptUserId}`))
    .orderBy(
      sql`array_position(${arrayParam(rolesHighestFirst, 'text')}, ${conversationMembers.role})`,
      asc(conversationMembers.joinedAt),
      asc(conversationMembers.userId),
    )
    .limit(1);
  return row;
}
