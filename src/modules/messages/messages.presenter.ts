import type { StoredMessage } from './messages.repository.ts';
import type { MessageEventData } from '../events/events.schemas.ts';
import type { MessageView } from './messages.schemas.ts';
import { toAttachmentView } from '../attachments/attachments.presenter.ts';
import type { FileLinker } from '../attachments/file-linker.ts';

// How messages are shown: pure functions of rows (no queries; `message-views.ts` reads what they need).

type ReactionSummary = MessageView['reactions'];

/**
 * A stored message as the API shows it, with its reactions already summarized for the viewer and the links
 * of its attachments signed by `links`.
 */
export function toMessageView(
  row: StoredMessage,
  reactions: ReactionSummary,
  links: FileLinker,
): MessageView {
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
    attachments: row.attachments.map((facts) =>
      toAttachmentView(row.tenantId, row.conversationId, facts, links),
    ),
    metadata: row.metadata,
    client_msg_id: row.clientMsgId,
    pinned_at: row.pinnedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    edited_at: row.editedAt?.toISOString() ?? null,
    deleted_at: row.deletedAt?.toISOString() ?? null,
  };
}

/** A message as events carry it to every member: reactions without any one viewer's `me`. */
export function toEventData(view: MessageView): MessageEventData {
  return { ...view, reactions: view.reactions.map((reaction) => ({ ...reaction, me: false })) };
}
