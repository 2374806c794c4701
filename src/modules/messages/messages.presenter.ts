import type { TenantScope } from '../../db/tenant-scope.ts';
import { type StoredMessage } from './messages.repository.ts';
import { summarizeReactions } from '../reactions/reactions.repository.ts';
import type { MessageEventData } from '../events/events.schemas.ts';
import type { MessageView } from './messages.schemas.ts';

type ReactionSummary = MessageView['reactions'];

/** A stored message as the API shows it, with its reactions already summarized for the viewer. */
export function toMessageView(row: StoredMessage, reactions: ReactionSummary): MessageView {
  return {
    id: row.id,
    conversation_id: row.conversationId,
    seq: row.seq,
    sender_id: row.senderId,
    text: row.text,
    mentions: row.mentions,
    thread_root_id: row.threadRootId,
    reply_count: row.replyCount,
    last_reply_at: row.lastReplyAt?.toISOString() ?? null,
    reactions,
    attachments: [],
    metadata: row.metadata,
    client_msg_id: row.clientMsgId,
    pinned_at: row.pinnedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    edited_at: row.editedAt?.toISOString() ?? null,
    deleted_at: row.deletedAt?.toISOString() ?? null,
  };
}

/** Messages as `viewerId` sees them, reactions aggregated for the whole batch in one query. */
export async function presentMessages(
  scope: TenantScope,
  viewerId: string,
  rows: StoredMessage[],
): Promise<MessageView[]> {
  const reactions = await summarizeReactions(
    scope,
    rows.map((row) => row.id),
    viewerId,
  );
  return rows.map((row) => toMessageView(row, reactions.get(row.id) ?? []));
}

/** One message as `viewerId` sees it. */
export async function presentMessage(
  scope: TenantScope,
  viewerId: string,
  row: StoredMessage,
): Promise<MessageView> {
  const [view] = await presentMessages(scope, viewerId, [row]);
  if (!view) throw new Error('presenting one message gave none');
  return view;
}

/** A message as events carry it to every member: reactions without any one viewer's `me`. */
export function toEventData(view: MessageView): MessageEventData {
  return { ...view, reactions: view.reactions.map((reaction) => ({ ...reaction, me: false })) };
}
