import type { TenantScope } from '../../db/tenant-scope.ts';
import { notFound } from '../../errors.ts';
import type {
  ConversationRow,
  ConversationWithMembership,
} from '../conversations/conversations.repository.ts';
import { findMessage, type StoredMessage } from '../messages/messages.repository.ts';
import { findConversationForUser } from './access.repository.ts';
import { isVisible, type Role } from './permissions.ts';

// Visibility first: every use case on one conversation or message starts here, inside its transaction, and
// answers 404 for what the caller may not see before any role (403) or state (409) check.

/** A conversation the user may see (a member, or any channel) with the user's role, else 404. */
export async function loadVisible(
  scope: TenantScope,
  conversationId: string,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ConversationWithMembership & { role: Role | null }> {
  const found = await findConversationForUser(scope, conversationId, userId, options);
  const role = found?.member?.role ?? null;
  if (!found || !isVisible(found.conversation.type, role)) throw notFound('conversation');
  return { ...found, role };
}

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
