import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import { inTenantAsUser, type TenantScope } from '../../db/tenant-scope.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { assertMetadataSize } from '../../metadata.ts';
import type { TenantContext } from '../../context.ts';
import { assertAllowed, assertNotArchived, loadVisible } from '../conversations/conversation-access.ts';
import { findMembers } from '../conversations/conversations.repository.ts';
import { openDirectConversation } from '../conversations/conversations.service.ts';
import { assertNotDeleted, loadVisibleMessage } from './message-access.ts';
import { mentionCandidatesOf, mentionsOf } from './message-text.ts';
import {
  adjustReplyCount,
  allocateSeq,
  findMessage,
  findMessageByClientMsgId,
  insertEdit,
  insertMessage,
  listEdits,
  listReplies,
  listTimeline,
  purgeMessageHistory,
  updateMessage,
  type StoredMessage,
} from './messages.repository.ts';
import { advanceReadWatermark } from '../reads/reads.repository.ts';
import { presentMessage, presentMessages, toEventData, toMessageView } from './messages.presenter.ts';
import type { EventLog } from '../events/event-log.ts';
import { redactMessageEvents } from '../events/events.repository.ts';
import type { HistoryQuery, MessageView, SendMessageInput } from './messages.schemas.ts';

/** Thrown inside a send to roll it back (and give its seq back) when a concurrent send took its client_msg_id. */
class ClientMsgIdTaken extends Error {}

/** The members of a conversation that a text mentions. */
async function resolveMentions(scope: TenantScope, conversationId: string, text: string): Promise<string[]> {
  const candidates = mentionCandidatesOf(text);
  if (candidates.length === 0) return [];
  const members = await findMembers(scope, conversationId, candidates);
  return mentionsOf(text, new Set(members.map((member) => member.userId)));
}

/** The original of a retried send, or a 409 when the sender used that client_msg_id in another conversation. */
function originalOfRetry(existing: StoredMessage, conversationId: string): StoredMessage {
  if (existing.conversationId !== conversationId) {
    throw new AppError(
      'conflict',
      'this client_msg_id was already used for a message in another conversation',
    );
  }
  return existing;
}

/**
 * Sends within the caller's transaction. The seq is allocated by incrementing the conversation's counter,
 * which holds its row lock to commit: commit order is seq order, and a rolled back send gives its seq back.
 */
async function sendInScope(
  scope: TenantScope,
  events: EventLog,
  userId: string,
  conversationId: string,
  input: SendMessageInput,
): Promise<{ message: StoredMessage; created: boolean }> {
  assertMetadataSize(input.metadata, '/body/metadata');
  if (input.client_msg_id !== undefined) {
    const existing = await findMessageByClientMsgId(scope, userId, input.client_msg_id);
    if (existing) return { message: originalOfRetry(existing, conversationId), created: false };
  }
  const { conversation, role } = await loadVisible(scope, conversationId, userId);
  assertAllowed(role, 'send');
  assertNotArchived(conversation);
  if (input.attachment_ids !== undefined && input.attachment_ids.length > 0) {
    throw new AppError('validation_failed', 'attachments are not supported yet', [
      { path: '/body/attachment_ids/0', message: 'no such attachment' },
    ]);
  }

  let threadRootId: string | null = null;
  if (input.thread_root_id !== undefined) {
    const target = await findMessage(scope, input.thread_root_id);
    if (!target || target.conversationId !== conversationId) {
      throw new AppError('validation_failed', 'thread_root_id is not a message of this conversation', [
        { path: '/body/thread_root_id', message: 'is not a message of this conversation' },
      ]);
    }
    // A reply to a reply joins the same thread.
    const root = target.threadRootId === null ? target : await findMessage(scope, target.threadRootId);
    if (!root) throw new Error('thread root vanished');
    assertNotDeleted(root);
    threadRootId = root.id;
  }

  const mentions = await resolveMentions(scope, conversationId, input.text);
  const allocated = await allocateSeq(scope, conversationId, threadRootId === null);
  if (!allocated) throw new AppError('not_found', 'conversation not found');
  // Archived between the check above and the lock: the lock's view wins.
  assertNotArchived(allocated);
  const message = await insertMessage(scope, {
    conversationId,
    seq: allocated.seq,
    id: newId(),
    senderId: userId,
    text: input.text,
    mentions,
    threadRootId,
    metadata: input.metadata ?? {},
    clientMsgId: input.client_msg_id ?? null,
  });
  if (!message) throw new ClientMsgIdTaken();
  if (threadRootId !== null) await adjustReplyCount(scope, threadRootId, 1);
  // Sending marks the conversation read for the sender.
  const lastReadSeq = await advanceReadWatermark(scope, conversationId, userId, allocated.seq);
  await events.record(scope, conversationId, [
    { type: 'message.created', seq: message.seq, data: toEventData(toMessageView(message, [])) },
    {
      type: 'read.updated',
      subjectUserId: userId,
      isPrivate: true,
      data: { user_id: userId, last_read_seq: lastReadSeq ?? allocated.seq },
    },
  ]);
  return { message, created: true };
}

/** Messages: sending (with exactly-once retries), history, threads, edits and deletion. */
export function createMessagesService({ orm, events }: { orm: Orm; events: EventLog }) {
  const run = <T>(ctx: TenantContext, work: (scope: TenantScope, userId: string) => Promise<T>) =>
    inTenantAsUser(orm, ctx, work);

  /** Runs a send; if a concurrent send with the same client_msg_id won, returns its message instead. */
  const sendOnce = async (
    ctx: TenantContext,
    clientMsgId: string | undefined,
    conversationIdOf: (original: StoredMessage) => string,
    send: (scope: TenantScope, userId: string) => Promise<{ message: StoredMessage; created: boolean }>,
  ): Promise<{ message: MessageView; created: boolean }> => {
    try {
      return await run(ctx, async (scope, userId) => {
        const result = await send(scope, userId);
        return { message: await presentMessage(scope, userId, result.message), created: result.created };
      });
    } catch (error) {
      if (!(error instanceof ClientMsgIdTaken) || clientMsgId === undefined) throw error;
      return run(ctx, async (scope, userId) => {
        const existing = await findMessageByClientMsgId(scope, userId, clientMsgId);
        if (!existing) throw new Error('client_msg_id conflicted with a message that does not exist');
        originalOfRetry(existing, conversationIdOf(existing));
        return { message: await presentMessage(scope, userId, existing), created: false };
      });
    }
  };

  return {
    /** Sends a message; the same client_msg_id from the same sender returns the original (created: false). */
    sendMessage(ctx: TenantContext, conversationId: string, input: SendMessageInput) {
      return sendOnce(
        ctx,
        input.client_msg_id,
        () => conversationId,
        (scope, userId) => sendInScope(scope, events, userId, conversationId, input),
      );
    },

    /** Finds or creates the direct conversation with `to` and sends to it, in one transaction. */
    sendDirectMessage(
      ctx: TenantContext,
      input: { to: string; text: string; client_msg_id?: string; metadata?: Record<string, unknown> },
    ) {
      // The direct conversation's id, once known: a retry is checked against it like any send (409 if the
      // client_msg_id belongs to a message elsewhere).
      let directId = '';
      return sendOnce(
        ctx,
        input.client_msg_id,
        () => directId,
        async (scope, userId) => {
          const { conversation } = await openDirectConversation(scope, events, userId, input.to, '/body/to');
          directId = conversation.id;
          return sendInScope(scope, events, userId, conversation.id, {
            text: input.text,
            ...(input.client_msg_id === undefined ? {} : { client_msg_id: input.client_msg_id }),
            ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
          });
        },
      );
    },

    /** A page of the main timeline in ascending seq: the latest, before or after a seq, or around a message. */
    listHistory(ctx: TenantContext, conversationId: string, query: HistoryQuery) {
      return run(ctx, async (scope, userId) => {
        const { conversation, role } = await loadVisible(scope, conversationId, userId);
        assertAllowed(role, 'read');
        const limit = query.limit ?? 50;
        const given = [query.before_seq, query.after_seq, query.around].filter(
          (value) => value !== undefined,
        );
        if (given.length > 1) {
          throw new AppError('validation_failed', 'use one of before_seq, after_seq and around', [
            { path: '/querystring', message: 'before_seq, after_seq and around exclude each other' },
          ]);
        }
        const firstMain = conversation.firstMainSeq;
        let rows: StoredMessage[];
        let hasMoreBefore: boolean;
        let hasMoreAfter: boolean;
        if (query.around !== undefined) {
          const anchor = await findMessage(scope, query.around);
          if (!anchor || anchor.conversationId !== conversationId || anchor.threadRootId !== null) {
            throw new AppError(
              'validation_failed',
              'around is not a main-timeline message of this conversation',
              [
                {
                  path: '/querystring/around',
                  message: 'is not a main-timeline message of this conversation',
                },
              ],
            );
          }
          const beforeCount = Math.floor(limit / 2);
          const afterCount = limit - beforeCount;
          const before = await listTimeline(scope, conversationId, {
            beforeSeq: anchor.seq,
            limit: beforeCount + 1,
          });
          const after = await listTimeline(scope, conversationId, {
            fromSeq: anchor.seq,
            limit: afterCount + 1,
          });
          hasMoreBefore = before.length > beforeCount;
          hasMoreAfter = after.length > afterCount;
          rows = [...before.slice(0, beforeCount).reverse(), ...after.slice(0, afterCount)];
        } else if (query.after_seq !== undefined) {
          const page = await listTimeline(scope, conversationId, {
            afterSeq: query.after_seq,
            limit: limit + 1,
          });
          hasMoreAfter = page.length > limit;
          rows = page.slice(0, limit);
          hasMoreBefore = firstMain !== null && firstMain <= query.after_seq;
        } else {
          const page = await listTimeline(scope, conversationId, {
            beforeSeq: query.before_seq,
            limit: limit + 1,
          });
          hasMoreBefore = page.length > limit;
          rows = page.slice(0, limit).reverse();
          hasMoreAfter = query.before_seq !== undefined && conversation.lastMainSeq >= query.before_seq;
        }
        return {
          data: await presentMessages(scope, userId, rows),
          has_more_before: hasMoreBefore,
          has_more_after: hasMoreAfter,
        };
      });
    },

    getMessage(ctx: TenantContext, messageId: string) {
      return run(ctx, async (scope, userId) => {
        const { message, role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        return presentMessage(scope, userId, message);
      });
    },

    /** A thread, oldest first. Asked of a reply, answers with the thread it belongs to. */
    listReplies(ctx: TenantContext, messageId: string, query: { after_seq?: number; limit?: number }) {
      return run(ctx, async (scope, userId) => {
        const { message, role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        const limit = query.limit ?? 50;
        const rootId = message.threadRootId ?? message.id;
        const rows = await listReplies(scope, rootId, { afterSeq: query.after_seq ?? 0, limit: limit + 1 });
        return {
          data: await presentMessages(scope, userId, rows.slice(0, limit)),
          has_more_after: rows.length > limit,
        };
      });
    },

    /** Replaces the text (sender only), keeping the previous version. */
    editMessage(ctx: TenantContext, messageId: string, input: { text: string }) {
      return run(ctx, async (scope, userId) => {
        const { message, conversation, role } = await loadVisibleMessage(scope, messageId, userId, {
          forUpdate: true,
        });
        assertAllowed(role, 'read');
        if (message.senderId !== userId)
          throw new AppError('forbidden', 'only the sender may edit a message');
        assertAllowed(role, 'edit_own_message');
        assertNotDeleted(message);
        assertNotArchived(conversation);
        if (message.text === input.text) return presentMessage(scope, userId, message);
        await insertEdit(scope, {
          messageId,
          text: message.text ?? '',
          writtenAt: message.editedAt ?? message.createdAt,
        });
        const updated = await updateMessage(scope, messageId, {
          text: input.text,
          mentions: await resolveMentions(scope, message.conversationId, input.text),
          editedAt: sql`now()`,
        });
        const view = await presentMessage(scope, userId, updated);
        await events.record(scope, updated.conversationId, [
          { type: 'message.updated', seq: updated.seq, data: toEventData(view) },
        ]);
        return view;
      });
    },

    /** Earlier versions of a message, oldest first. */
    listEdits(ctx: TenantContext, messageId: string) {
      return run(ctx, async (scope, userId) => {
        const { role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        const edits = await listEdits(scope, messageId);
        return {
          data: edits.map((edit) => ({
            version: edit.version,
            text: edit.text,
            created_at: edit.writtenAt.toISOString(),
            edited_at: edit.replacedAt.toISOString(),
          })),
        };
      });
    },

    /**
     * Deletes a message (the sender, or an ADMIN/OWNER): text, mentions, metadata, pin, reactions and edit
     * history are purged at once; the tombstone keeps its seq. Deleting a tombstone changes nothing.
     */
    deleteMessage(ctx: TenantContext, messageId: string) {
      return run(ctx, async (scope, userId) => {
        const { message, conversation, role } = await loadVisibleMessage(scope, messageId, userId, {
          forUpdate: true,
        });
        assertAllowed(role, 'read');
        assertAllowed(role, message.senderId === userId ? 'delete_own_message' : 'delete_any_message');
        if (message.deletedAt !== null) return;
        assertNotArchived(conversation);
        const tombstone = await updateMessage(scope, messageId, {
          text: null,
          mentions: [],
          metadata: {},
          pinnedAt: null,
          pinnedBy: null,
          deletedAt: sql`now()`,
        });
        await purgeMessageHistory(scope, messageId);
        await redactMessageEvents(scope, tombstone.conversationId, tombstone.seq);
        if (message.threadRootId !== null) await adjustReplyCount(scope, message.threadRootId, -1);
        await events.record(scope, tombstone.conversationId, [
          { type: 'message.deleted', seq: tombstone.seq, data: toEventData(toMessageView(tombstone, [])) },
        ]);
      });
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;
