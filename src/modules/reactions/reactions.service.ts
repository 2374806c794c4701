import type { Orm } from '../../db/client.ts';
import { inTenantAsUser, type TenantScope } from '../../db/tenant-scope.ts';
import type { TenantContext } from '../../context.ts';
import { AppError } from '../../errors.ts';
import { cursorText, decodeCursor, toPage } from '../../http/pagination.ts';
import { assertAllowed, assertNotArchived, assertNotDeleted } from '../access/permissions.ts';
import { loadVisibleMessage } from '../access/visibility.ts';
import { isReactionEmoji } from '../messages/message-text.ts';
import type { EventLog } from '../events/event-log.ts';
import { loadMessageView } from '../messages/message-views.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import { MAX_DISTINCT_REACTIONS } from '../messages/messages.schemas.ts';
import { deleteReaction, emojiOnMessage, insertReaction, listReactions } from './reactions.repository.ts';

function assertEmoji(emoji: string): void {
  if (!isReactionEmoji(emoji)) {
    throw new AppError('validation_failed', 'emoji must be one emoji or a :short_name:', [
      { path: '/params/emoji', message: 'must be one emoji grapheme or a :short_name: of 1–64 characters' },
    ]);
  }
}

/** Refuses a reaction that would give a message more than MAX_DISTINCT_REACTIONS different emoji. */
async function assertRoomForEmoji(scope: TenantScope, messageId: string, emoji: string): Promise<void> {
  const { distinct, isPresent } = await emojiOnMessage(scope, messageId, emoji);
  if (!isPresent && distinct >= MAX_DISTINCT_REACTIONS) {
    throw new AppError(
      'conflict',
      `the message already carries ${MAX_DISTINCT_REACTIONS} different emoji: react with one of those`,
    );
  }
}

/** Reactions: one per user, emoji and message; setting and removing are idempotent. */
export function createReactionsService({
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

  const change = (ctx: TenantContext, messageId: string, emoji: string, isAdding: boolean) =>
    run(ctx, async (scope, userId) => {
      assertEmoji(emoji);
      // Locks the conversation first, like every event-writing transaction (one lock order, no deadlocks).
      const { message, conversation, role } = await loadVisibleMessage(scope, messageId, userId, {
        forUpdate: true,
      });
      assertAllowed(role, 'read');
      assertAllowed(role, 'react');
      assertNotDeleted(message);
      assertNotArchived(conversation);
      // Under the conversation's lock, so two reactions with new emoji cannot both take the last place.
      if (isAdding) await assertRoomForEmoji(scope, messageId, emoji);
      const reaction = { messageId, emoji, userId };
      const isChanged = await (isAdding ? insertReaction(scope, reaction) : deleteReaction(scope, reaction));
      if (isChanged) {
        await events.record(scope, message.conversationId, [
          {
            type: isAdding ? 'reaction.added' : 'reaction.removed',
            seq: message.seq,
            data: { message_id: messageId, emoji, user_id: userId },
          },
        ]);
      }
      return loadMessageView(scope, userId, message, links);
    });

  return {
    /** Adds the caller's reaction (again adding it changes nothing); returns the message. */
    addReaction: (ctx: TenantContext, messageId: string, emoji: string) =>
      change(ctx, messageId, emoji, true),
    /** Removes the caller's reaction (removing a missing one changes nothing); returns the message. */
    removeReaction: (ctx: TenantContext, messageId: string, emoji: string) =>
      change(ctx, messageId, emoji, false),

    /** Who reacted with what, by emoji then user id. */
    listReactions(ctx: TenantContext, messageId: string, query: { cursor?: string; limit?: number }) {
      return run(ctx, async (scope, userId) => {
        const { role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        const limit = query.limit ?? 50;
        const key = query.cursor === undefined ? undefined : decodeCursor(query.cursor, 2);
        const rows = await listReactions(scope, messageId, {
          after: key && { emoji: cursorText(key[0]), userId: cursorText(key[1]) },
          limit: limit + 1,
        });
        const page = toPage(rows, limit, (row) => [row.emoji, row.userId]);
        return {
          ...page,
          data: page.data.map((row) => ({
            emoji: row.emoji,
            user_id: row.userId,
            created_at: row.createdAt.toISOString(),
          })),
        };
      });
    },
  };
}

export type ReactionsService = ReturnType<typeof createReactionsService>;
