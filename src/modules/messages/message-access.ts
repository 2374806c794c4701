import type { TenantScope } from '../../db/tenant-scope.ts';
import { AppError, notFound } from '../../errors.ts';
import { loadVisible, type Role } from '../conversations/conversation-access.ts';
import type { ConversationRow } from '../conversations/conversations.repository.ts';
import { findMessage, type StoredMessage } from './messages.repository.ts';

/** A message the user may see, its conversation and the user's role there; 404 otherwise. */
export async function loadVisibleMessage(
  scope: TenantScope,
  messageId: string,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<{ message: StoredMessage; conversation: ConversationRow; role: Role | null }> {
  const found = await findMessage(scope, messageId);
  if (!found) throw notFound('message');
  // Writers lock the conversation before the message, as every event-writing transaction does: one lock
  // order, so an edit and a reply to the same message cannot deadlock.
  const { conversation, role } = await loadVisible(scope, found.conversationId, userId, options);
  const message = options.forUpdate ? await findMessage(scope, messageId, options) : found;
  if (!message) throw notFound('message');
  return { message, conversation, role };
}

/** The 409 of acting on a tombstone. */
export const deletedMessageError = () => new AppError('conflict', 'the message has been deleted');

/** A deleted message is a tombstone: nothing can be done to it but read it. */
export function assertNotDeleted(message: StoredMessage): void {
  if (message.deletedAt !== null) throw deletedMessageError();
}
