import { sql } from 'drizzle-orm';
import type { Orm } from '../../db/client.ts';
import {
  inTenant,
  inTenantAsUser,
  tenantDb,
  type TenantDb,
  type TenantScope,
} from '../../db/tenant-scope.ts';
import { AppError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { assertMetadataSize } from '../../metadata.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import {
  archivedError,
  assertAllowed,
  assertNotArchived,
  assertNotDeleted,
  deletedMessageError,
  notAllowedError,
  rolesAllowedTo,
} from '../access/permissions.ts';
import { loadVisibleMessage } from '../access/visibility.ts';
import { findMembers } from '../conversations/conversations.repository.ts';
import { openDirectConversation } from '../conversations/direct-conversations.ts';
import { mentionCandidatesOf, mentionsOf } from './message-text.ts';
import {
  adjustReplyCount,
  findMessageBySender,
  insertEdit,
  listEdits,
  listReplies,
  readTimelinePage,
  purgeMessageHistory,
  updateMessage,
  type StoredMessage,
  type TimelineWindow,
} from './messages.repository.ts';
import {
  findStoredSends,
  sendMessageRows,
  type SendOutcome,
  type SendRefusal,
  type SendValues,
} from './message-sends.repository.ts';
import { loadMessageView, loadMessageViews } from './message-views.ts';
import { toEventData, toMessageView } from './messages.presenter.ts';
import type { EventLog } from '../events/event-log.ts';
import { redactMessageEvents } from '../events/events.repository.ts';
import {
  MAX_LISTED_EDITS,
  MAX_MENTIONS,
  type HistoryQuery,
  type MessageView,
  type SendMessageInput,
} from './messages.schemas.ts';
import { SendBatcher, type RunSends } from './send-batcher.ts';
import type { AttachmentFacts } from '../../db/schema/attachments.ts';
import {
  bindAttachments,
  deleteMessageAttachments,
  lockAttachments,
  setMessageAttachments,
} from '../attachments/attachments.repository.ts';
import { attachmentFactsForSend } from '../attachments/attachments.service.ts';
import type { FileLinker } from '../attachments/file-linker.ts';

/** The roles that may send, from the one permission table; the send statement checks the member's against them. */
const SEND_ROLES = rolesAllowedTo('send');
/** The roles that may read, likewise for the history page's statement. */
const READ_ROLES = rolesAllowedTo('read');

/** The members of a conversation that a text mentions. */
async function resolveMentions(scope: TenantScope, conversationId: string, text: string): Promise<string[]> {
  const candidates = mentionCandidatesOf(text);
  if (candidates.length === 0) return [];
  const members = await findMembers(scope, conversationId, candidates);
  return mentionsOf(text, new Set(members.map((member) => member.userId)), MAX_MENTIONS);
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

/** What a send asks for, checked before the database is asked anything. */
/** A send as the service works with it: its text is `''` when the message is its attachments alone. */
export type SendInput = Omit<SendMessageInput, 'text'> & { text: string };

/** Checks what a send's schema cannot (its metadata's size; text, attachments or both); the send to make. */
function checkSendInput(input: SendMessageInput): SendInput {
  assertMetadataSize(input.metadata, '/body/metadata');
  const text = input.text ?? '';
  if (text === '' && (input.attachment_ids?.length ?? 0) === 0) {
    throw new AppError('validation_failed', 'a message has text, attachments or both', [
      { path: '/body/text', message: 'is required unless attachment_ids names a file' },
    ]);
  }
  return { ...input, text };
}

/** The API error of a refused send. */
function sendRefusalError(refusal: SendRefusal): AppError {
  switch (refusal) {
    case 'conversation_not_found':
      return notFound('conversation');
    case 'role_may_not_send':
      return notAllowedError('send');
    case 'conversation_archived':
      return archivedError();
    case 'thread_target_elsewhere':
      return new AppError('validation_failed', 'thread_root_id is not a message of this conversation', [
        { path: '/body/thread_root_id', message: 'is not a message of this conversation' },
      ]);
    case 'thread_root_deleted':
      return deletedMessageError();
  }
}

/** The most sends one call of parley_send_messages carries. */
const MAX_SEND_BATCH = 64;

/** What the database is asked to write for a send. `mentions` are already resolved against the members. */
export function sendValuesOf(
  tenantId: string,
  userId: string,
  conversationId: string,
  input: SendInput,
  mentions: string[],
  links: FileLinker,
  attachments: AttachmentFacts[] = [],
): SendValues {
  const id = newId();
  const clientMsgId = input.client_msg_id ?? null;
  const metadata = input.metadata ?? {};
  // The event's message view, built by the one presenter; the database fills in seq, created_at and the
  // thread root (a reply to a reply joins its root's thread), which only it knows.
  const eventData = toEventData(
    toMessageView(
      {
        tenantId,
        conversationId,
        seq: 0,
        id,
        senderId: userId,
        text: input.text,
        mentions,
        threadRootId: null,
        replyCount: 0,
        lastReplyAt: null,
        metadata,
        attachments,
        clientMsgId,
        pinnedAt: null,
        pinnedBy: null,
        createdAt: new Date(0),
        editedAt: null,
        deletedAt: null,
      },
      [],
      links,
    ),
  );
  return {
    senderId: userId,
    conversationId,
    id,
    text: input.text,
    mentions,
    threadTargetId: input.thread_root_id ?? null,
    metadata,
    clientMsgId,
    eventData,
  };
}

/** The message a send came to, or the API error of its refusal. */
function sentOrThrow(outcome: SendOutcome): { message: StoredMessage; created: boolean } {
  if (typeof outcome === 'string') throw sendRefusalError(outcome);
  return outcome;
}

/**
 * The batcher the service sends through: `runSends` is the send statement (a test wraps it to fail after
 * its commit); after a failed call, its sends are looked up by id in a transaction of their tenant.
 */
export function createSendBatcher(
  orm: Orm,
  sendBatchesInFlight: number,
  runSends: RunSends<TenantDb> = (tenant, sends) => sendMessageRows(tenant, sends, SEND_ROLES),
): SendBatcher<TenantDb> {
  return new SendBatcher<TenantDb>(
    runSends,
    (tenant, sends) => inTenant(orm, tenant.tenantId, (scope) => findStoredSends(scope, sends)),
    sendBatchesInFlight,
    MAX_SEND_BATCH,
  );
}

/** Messages: sending (with exactly-once retries), history, threads, edits and deletion. */
export function createMessagesService({
  orm,
  events,
  links,
  sendBatchesInFlight,
}: {
  orm: Orm;
  events: EventLog;
  /** Signs the links of messages' attachments as they are shown. */
  links: FileLinker;
  /** How many batches of sends may run at once (see `SendBatcher`). */
  sendBatchesInFlight: number;
}) {
  const run = <T>(ctx: TenantContext, work: (scope: TenantScope, userId: string) => Promise<T>) =>
    inTenantAsUser(orm, ctx, work);
  const batcher = createSendBatcher(orm, sendBatchesInFlight);

  /**
   * A send naming attachments, in the caller's transaction: they are locked and checked (the sender's, not
   * sent, not rejected), the message keeps what they are, and they are bound to it. A retry of a send
   * that bound them (its client_msg_id stored already) is answered by the original, like any retry.
   */
  async function sendWithAttachments(
    scope: TenantScope,
    userId: string,
    conversationId: string,
    input: SendInput,
    mentions: string[],
    attachmentIds: string[],
  ): Promise<{ message: StoredMessage; created: boolean }> {
    const rows = await lockAttachments(scope, attachmentIds);
    const isRetry =
      input.client_msg_id !== undefined &&
      (await findMessageBySender(scope, userId, input.client_msg_id)) !== undefined;
    const facts = isRetry ? [] : attachmentFactsForSend(rows, attachmentIds, userId);
    const values = sendValuesOf(scope.tenantId, userId, conversationId, input, mentions, links, facts);
    const [outcome] = await sendMessageRows(scope, [values], SEND_ROLES);
    if (outcome === undefined) throw new Error('a send of one returned no outcome');
    if (outcome instanceof Error) throw outcome;
    const sent = sentOrThrow(outcome);
    if (!sent.created) return sent;
    await setMessageAttachments(scope, sent.message.id, facts);
    await bindAttachments(scope, attachmentIds, { conversationId, messageId: sent.message.id });
    return { message: { ...sent.message, attachments: facts }, created: true };
  }

  /** A send's answer: a new message as is (it has no reactions yet), a retried one as the sender sees it. */
  const answer = async (
    ctx: TenantContext,
    conversationId: () => string,
    sent: { message: StoredMessage; created: boolean },
  ): Promise<{ message: MessageView; created: boolean }> => {
    if (sent.created) {
      events.announce(ctx.tenantId);
      return { message: toMessageView(sent.message, [], links), created: true };
    }
    const original = originalOfRetry(sent.message, conversationId());
    return {
      message: await run(ctx, (scope, userId) => loadMessageView(scope, userId, original, links)),
      created: false,
    };
  };

  return {
    /**
     * Sends a message in one round trip, shared with the sends that wait for the database with it (see
     * `SendBatcher`); the same client_msg_id from the same sender returns the original (created: false).
     * A text with @candidates first reads which of them are members.
     */
    async sendMessage(ctx: TenantContext, conversationId: string, body: SendMessageInput) {
      const userId = actingUserId(ctx);
      const input = checkSendInput(body);
      if (input.attachment_ids !== undefined && input.attachment_ids.length > 0) {
        const attachmentIds = input.attachment_ids;
        const sent = await run(ctx, async (scope) => {
          const mentions = await resolveMentions(scope, conversationId, input.text);
          return sendWithAttachments(scope, userId, conversationId, input, mentions, attachmentIds);
        });
        return answer(ctx, () => conversationId, sent);
      }
      const mentions =
        mentionCandidatesOf(input.text).length === 0
          ? []
          : await run(ctx, (scope) => resolveMentions(scope, conversationId, input.text));
      const values = sendValuesOf(ctx.tenantId, userId, conversationId, input, mentions, links);
      const sent = sentOrThrow(await batcher.send(tenantDb(orm, ctx), values));
      return answer(ctx, () => conversationId, sent);
    },

    /** Finds or creates the direct conversation with `to` and sends to it, in one transaction. */
    async sendDirectMessage(
      ctx: TenantContext,
      input: {
        to: string;
        text?: string;
        client_msg_id?: string;
        attachment_ids?: string[];
        metadata?: Record<string, unknown>;
      },
    ) {
      const send = checkSendInput({
        ...(input.text === undefined ? {} : { text: input.text }),
        ...(input.client_msg_id === undefined ? {} : { client_msg_id: input.client_msg_id }),
        ...(input.attachment_ids === undefined ? {} : { attachment_ids: input.attachment_ids }),
        ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
      });
      // The direct conversation's id, once known: a retry is checked against it like any send (409 if the
      // client_msg_id belongs to a message elsewhere).
      let directId = '';
      const sent = await run(ctx, async (scope, userId) => {
        const { conversation } = await openDirectConversation(scope, events, userId, input.to, '/body/to');
        directId = conversation.id;
        const mentions = await resolveMentions(scope, conversation.id, send.text);
        if (input.attachment_ids !== undefined && input.attachment_ids.length > 0) {
          return sendWithAttachments(scope, userId, conversation.id, send, mentions, input.attachment_ids);
        }
        const values = sendValuesOf(ctx.tenantId, userId, conversation.id, send, mentions, links);
        const [outcome] = await sendMessageRows(scope, [values], SEND_ROLES);
        if (outcome === undefined) throw new Error('a send of one returned no outcome');
        if (outcome instanceof Error) throw outcome;
        return sentOrThrow(outcome);
      });
      return answer(ctx, () => directId, sent);
    },

    /**
     * A page of the main timeline in ascending seq: the latest, before or after a seq, or around a message.
     * One round trip (`readTimelinePage`); each side reads one row more than it returns, to tell whether
     * there is more.
     */
    async listHistory(ctx: TenantContext, conversationId: string, query: HistoryQuery) {
      const userId = actingUserId(ctx);
      const given = [query.before_seq, query.after_seq, query.around].filter((value) => value !== undefined);
      if (given.length > 1) {
        throw new AppError('validation_failed', 'use one of before_seq, after_seq and around', [
          { path: '/querystring', message: 'before_seq, after_seq and around exclude each other' },
        ]);
      }
      const limit = query.limit ?? 50;
      // Around a message: half the page before it, the rest from it on.
      const beforeCount = query.around !== undefined ? Math.floor(limit / 2) : limit;
      const fromCount = limit - beforeCount;
      const window: TimelineWindow =
        query.around !== undefined
          ? { around: query.around, beforeLimit: beforeCount + 1, fromLimit: fromCount + 1 }
          : query.after_seq !== undefined
            ? { fromSeq: query.after_seq + 1, beforeLimit: 0, fromLimit: limit + 1 }
            : { beforeSeq: query.before_seq, beforeLimit: limit + 1, fromLimit: 0 };
      const page = await readTimelinePage(tenantDb(orm, ctx), userId, conversationId, window, READ_ROLES);
      if (!page.visible) throw notFound('conversation');
      if (!page.mayRead) throw notAllowedError('read');
      if (!page.anchorFound) {
        throw new AppError(
          'validation_failed',
          'around is not a main-timeline message of this conversation',
          [{ path: '/querystring/around', message: 'is not a main-timeline message of this conversation' }],
        );
      }
      let hasMoreBefore: boolean;
      let hasMoreAfter: boolean;
      let rows: StoredMessage[];
      if (query.around !== undefined) {
        hasMoreBefore = page.before.length > beforeCount;
        hasMoreAfter = page.from.length > fromCount;
        rows = [...page.before.slice(0, beforeCount).reverse(), ...page.from.slice(0, fromCount)];
      } else if (query.after_seq !== undefined) {
        hasMoreAfter = page.from.length > limit;
        rows = page.from.slice(0, limit);
        hasMoreBefore = page.firstMainSeq !== null && page.firstMainSeq <= query.after_seq;
      } else {
        hasMoreBefore = page.before.length > limit;
        rows = page.before.slice(0, limit).reverse();
        hasMoreAfter = query.before_seq !== undefined && page.lastMainSeq >= query.before_seq;
      }
      return {
        data: rows.map((row) => toMessageView(row, page.reactions.get(row.id) ?? [], links)),
        has_more_before: hasMoreBefore,
        has_more_after: hasMoreAfter,
      };
    },

    getMessage(ctx: TenantContext, messageId: string) {
      return run(ctx, async (scope, userId) => {
        const { message, role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        return loadMessageView(scope, userId, message, links);
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
          data: await loadMessageViews(scope, userId, rows.slice(0, limit), links),
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
        if (message.text === input.text) return loadMessageView(scope, userId, message, links);
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
        const view = await loadMessageView(scope, userId, updated, links);
        await events.record(scope, updated.conversationId, [
          { type: 'message.updated', seq: updated.seq, data: toEventData(view) },
        ]);
        return view;
      });
    },

    /** The latest earlier versions of a message (MAX_LISTED_EDITS), oldest first. */
    listEdits(ctx: TenantContext, messageId: string) {
      return run(ctx, async (scope, userId) => {
        const { role } = await loadVisibleMessage(scope, messageId, userId);
        assertAllowed(role, 'read');
        const edits = await listEdits(scope, messageId, MAX_LISTED_EDITS);
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
          attachments: [],
          pinnedAt: null,
          pinnedBy: null,
          deletedAt: sql`now()`,
        });
        await purgeMessageHistory(scope, messageId);
        // Its files go with it: the rows now, their bytes by background work (the rows' trigger queues them).
        if (message.attachments.length > 0) await deleteMessageAttachments(scope, messageId);
        await redactMessageEvents(scope, tombstone.conversationId, tombstone.seq);
        if (message.threadRootId !== null) await adjustReplyCount(scope, message.threadRootId, -1);
        await events.record(scope, tombstone.conversationId, [
          {
            type: 'message.deleted',
            seq: tombstone.seq,
            data: toEventData(toMessageView(tombstone, [], links)),
          },
        ]);
      });
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;
