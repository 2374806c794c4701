import type { ConversationEventData, NewEvent } from '../events/events.schemas.ts';
import { toMessageView } from '../messages/messages.presenter.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import type { MessageView } from '../messages/messages.schemas.ts';
import type { ConversationListRow, ConversationRow, MemberRow } from './conversations.repository.ts';
import type { ReactionsByMessage } from '../reactions/reactions.repository.ts';
import type { ConversationView, MemberView } from './conversations.schemas.ts';
import type { Role } from '../access/permissions.ts';

// How conversations and members are shown: to one viewer (API responses) or to every member (events).
// Pure functions of rows, no queries: `conversation-views.ts` reads what a view needs beyond its rows.

/** A conversation as its viewer sees it; counts and the last message come from `loadConversationViews`. */
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

/** A row of the caller's conversation list (`readConversationPage`), its last message with its reactions. */
export function toListedConversationView(
  row: ConversationListRow,
  reactions: ReactionsByMessage,
  links: FileLinker,
): ConversationView {
  return toConversationView(row.conversation, row.member, {
    unreadCount: row.unreadCount,
    mentionCount: row.mentionCount,
    lastMessage:
      row.lastMessage === null
        ? null
        : toMessageView(row.lastMessage, reactions.get(row.lastMessage.id) ?? [], links),
  });
}

/** A member as the API shows it. */
export const toMemberView = (member: MemberRow): MemberView => ({
  user_id: member.userId,
  role: member.role,
  joined_at: member.joinedAt.toISOString(),
});
