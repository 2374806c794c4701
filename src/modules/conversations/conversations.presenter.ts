import type { TenantScope } from '../../db/tenant-scope.ts';
import type { ConversationEventData, NewEvent } from '../events/events.schemas.ts';
import { presentMessages, toMessageView } from '../messages/messages.presenter.ts';
import { findMessagesAt } from '../messages/messages.repository.ts';
import type { MessageView } from '../messages/messages.schemas.ts';
import { countUnread } from '../reads/reads.repository.ts';
import type { ConversationListRow, ConversationRow, MemberRow } from './conversations.repository.ts';
import type { ReactionsByMessage } from '../reactions/reactions.repository.ts';
import type { ConversationView, MemberView } from './conversations.schemas.ts';
import type { Role } from './conversation-access.ts';

// How conversations and members are shown: to one viewer (API responses) or to every member (events).

/** A conversation as its viewer sees it; counts and the last message come from `presentConversations`. */
export function toConversationView(
  conversation: ConversationRow,
  member: MemberRow | null,
  activity: Activity = NO_ACTIVITY,
): ConversationView {
  const mutedUntil = member?.mutedUntil ?? null;
  return {
    ...sharedFieldsOf(conversation),
    role: member?.role ?? null,
    muted: mutedUntil !== null && mutedUntil.getTime() > Date.now(),
    muted_until: mutedUntil?.toISOString() ?? null,
    unread_count: activity.unreadCount,
    mention_count: activity.mentionCount,
    last_message: activity.lastMessage,
  };
}

/** The fields of a conversation that are the same for every viewer. */
function sharedFieldsOf(conversation: ConversationRow) {
  return {
    id: conversation.id,
    type: conversation.type,
    name: conversation.name,
    topic: conversation.topic,
    metadata: conversation.metadata,
    created_by: conversation.createdBy,
    member_count: conversation.memberCount,
    created_at: conversation.createdAt.toISOString(),
    updated_at: conversation.updatedAt.toISOString(),
    archived_at: conversation.archivedAt?.toISOString() ?? null,
  };
}

/** A conversation as events carry it: the shared fields, nothing about any one viewer. */
export const conversationEventData = (conversation: ConversationRow): ConversationEventData =>
  sharedFieldsOf(conversation);

/** A member event, about (and so also for) the member: a removed user learns it was removed. */
export function memberEvent(
  type: 'member.added' | 'member.updated',
  member: { userId: string; role: Role },
): NewEvent;
export function memberEvent(type: 'member.removed', member: { userId: string }): NewEvent;
export function memberEvent(
  type: 'member.added' | 'member.updated' | 'member.removed',
  member: { userId: string; role?: Role },
): NewEvent {
  if (type === 'member.removed')
    return { type, subjectUserId: member.userId, data: { user_id: member.userId } };
  if (member.role === undefined) throw new Error(`${type} needs the member's role`);
  return { type, subjectUserId: member.userId, data: { user_id: member.userId, role: member.role } };
}

/** What the messaging core adds to a conversation as its viewer sees it. */
interface Activity {
  unreadCount: number;
  mentionCount: number;
  lastMessage: MessageView | null;
}
const NO_ACTIVITY: Activity = { unreadCount: 0, mentionCount: 0, lastMessage: null };

/**
 * Conversations as `userId` sees them, with unread and mention counts (for those the user belongs to) and
 * the latest main-timeline message (with its reactions): three queries for the whole batch.
 */
export async function presentConversations(
  scope: TenantScope,
  userId: string,
  rows: { conversation: ConversationRow; member: MemberRow | null }[],
): Promise<ConversationView[]> {
  const memberOf = rows.flatMap((row) => (row.member === null ? [] : [row.conversation.id]));
  const counts = new Map(
    (await countUnread(scope, scope.tenantId, userId, memberOf)).map((row) => [row.conversationId, row]),
  );
  const latest = await findMessagesAt(
    scope,
    rows.flatMap(({ conversation }) =>
      conversation.lastMainSeq > 0
        ? [{ conversationId: conversation.id, seq: conversation.lastMainSeq }]
        : [],
    ),
  );
  const lastMessages = new Map(
    (await presentMessages(scope, userId, latest)).map((message) => [message.conversation_id, message]),
  );
  return rows.map(({ conversation, member }) =>
    toConversationView(conversation, member, {
      unreadCount: counts.get(conversation.id)?.unreadCount ?? 0,
      mentionCount: counts.get(conversation.id)?.mentionCount ?? 0,
      lastMessage: lastMessages.get(conversation.id) ?? null,
    }),
  );
}

/** A row of the caller's conversation list (`readConversationPage`), its last message with its reactions. */
export function toListedConversationView(
  row: ConversationListRow,
  reactions: ReactionsByMessage,
): ConversationView {
  return toConversationView(row.conversation, row.member, {
    unreadCount: row.unreadCount,
    mentionCount: row.mentionCount,
    lastMessage:
      row.lastMessage === null
        ? null
        : toMessageView(row.lastMessage, reactions.get(row.lastMessage.id) ?? []),
  });
}

/** One conversation as `userId` sees it. */
export async function presentConversation(
  scope: TenantScope,
  userId: string,
  conversation: ConversationRow,
  member: MemberRow | null,
): Promise<ConversationView> {
  const [view] = await presentConversations(scope, userId, [{ conversation, member }]);
  if (!view) throw new Error('presenting one conversation gave none');
  return view;
}

/** A member as the API shows it. */
export const toMemberView = (member: MemberRow): MemberView => ({
  user_id: member.userId,
  role: member.role,
  joined_at: member.joinedAt.toISOString(),
});
