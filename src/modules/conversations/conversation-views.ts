import type { TenantScope } from '../../db/tenant-scope.ts';
import { loadMessageViews } from '../messages/message-views.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import { findMessagesAt } from '../messages/messages.repository.ts';
import { countUnread } from '../reads/reads.repository.ts';
import type { ConversationRow, MemberRow } from './conversations.repository.ts';
import { toConversationView } from './conversations.presenter.ts';
import type { ConversationView } from './conversations.schemas.ts';

// Conversations as one viewer sees them: what the view needs beyond the rows (unread and mention counts,
// the last message with its reactions) is read here, in the caller's transaction, and the pure presenter
// shapes it.

/**
 * Conversations as `userId` sees them, with unread and mention counts (for those the user belongs to) and
 * the latest main-timeline message (with its reactions): three queries for the whole batch.
 */
export async function loadConversationViews(
  scope: TenantScope,
  userId: string,
  rows: { conversation: ConversationRow; member: MemberRow | null }[],
  links: FileLinker,
): Promise<ConversationView[]> {
  const memberOf = rows.flatMap((row) => (row.member === null ? [] : [row.conversation.id]));
  const counts = new Map(
    (await countUnread(scope, userId, memberOf)).map((row) => [row.conversationId, row]),
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
    (await loadMessageViews(scope, userId, latest, links)).map((message) => [
      message.conversation_id,
      message,
    ]),
  );
  return rows.map(({ conversation, member }) =>
    toConversationView(conversation, member, {
      unreadCount: counts.get(conversation.id)?.unreadCount ?? 0,
      mentionCount: counts.get(conversation.id)?.mentionCount ?? 0,
      lastMessage: lastMessages.get(conversation.id) ?? null,
    }),
  );
}

/** One conversation as `userId` sees it. */
export async function loadConversationView(
  scope: TenantScope,
  userId: string,
  conversation: ConversationRow,
  member: MemberRow | null,
  links: FileLinker,
): Promise<ConversationView> {
  const [view] = await loadConversationViews(scope, userId, [{ conversation, member }], links);
  if (!view) throw new Error('presenting one conversation gave none');
  return view;
}
