import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  ConversationMessagesParams,
  DirectMessageBody,
  EditList,
  EditMessageBody,
  HistoryPage,
  HistoryQuery,
  Message,
  MessageParams,
  RepliesPage,
  RepliesQuery,
  SendMessageBody,
} from './messages.schemas.ts';
import type { MessagesService } from './messages.service.ts';

const asUser = { auth: 'user' } as const;
/** Sending counts against the caller's `sends` rate-limit budget, not its `writes` (src/http/rate-limit.ts). */
const asSender = { auth: 'user', rateLimitBudget: 'sends' } as const;
const doc = {
  tags: ['messages'],
  security: [{ userToken: [] }, { apiKey: [] }] as Array<Record<string, string[]>>,
};

/** Sending, history, threads, edits and deletion. */
export function registerMessageRoutes(app: App, messages: MessagesService): void {
  app.post('/v1/conversations/:conversation_id/messages', {
    config: asSender,
    schema: {
      operationId: 'sendMessage',
      ...doc,
      summary: 'Send a message',
      description:
        'The same client_msg_id from the same sender returns the original message with 200: a retry never ' +
        'duplicates. seq is dense and strictly increasing per conversation, in commit order. Sending marks the ' +
        'conversation read for the sender.',
      params: ConversationMessagesParams,
      body: SendMessageBody,
      response: { 200: Message, 201: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) => {
      const result = await messages.sendMessage(
        tenantContext(request),
        request.params.conversation_id,
        request.body,
      );
      return reply.code(result.created ? 201 : 200).send(result.message);
    },
  });

  app.post('/v1/direct-messages', {
    config: asSender,
    schema: {
      operationId: 'sendDirectMessage',
      description:
        'Sends a message to one user, creating the direct conversation between the two on first use. 201 with the new message; a retry with the same `client_msg_id` answers 200 with the first one. Takes `client_msg_id`, `attachment_ids` and `metadata` as a send to a conversation does.',
      ...doc,
      summary: 'Send a direct message, creating the direct conversation if needed',
      body: DirectMessageBody,
      response: { 200: Message, 201: Message, ...errorResponses('forbidden', 'conflict') },
    },
    handler: async (request, reply) => {
      const result = await messages.sendDirectMessage(tenantContext(request), request.body);
      return reply.code(result.created ? 201 : 200).send(result.message);
    },
  });

  app.get('/v1/conversations/:conversation_id/messages', {
    config: asUser,
    schema: {
      operationId: 'listMessages',
      ...doc,
      summary: 'A page of the main timeline, ascending seq',
      description:
        'No parameter: the latest page. before_seq / after_seq: the page before or after a seq. around: a page ' +
        'centred on a message. Thread replies stay out of the main timeline.',
      params: ConversationMessagesParams,
      querystring: HistoryQuery,
      response: { 200: HistoryPage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      messages.listHistory(tenantContext(request), request.params.conversation_id, request.query),
  });

  app.get('/v1/messages/:message_id', {
    config: asUser,
    schema: {
      operationId: 'getMessage',
      description:
        "One message, as history shows it: text, mentions, thread, reactions with the caller's own marked, attachments with fresh signed links. A deleted one is a tombstone (`deleted_at`, no text).",
      ...doc,
      summary: 'Read a message',
      params: MessageParams,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => messages.getMessage(tenantContext(request), request.params.message_id),
  });

  app.get('/v1/messages/:message_id/replies', {
    config: asUser,
    schema: {
      operationId: 'listReplies',
      description:
        'The replies of a thread (the message is its root), oldest first; page on with `after_seq`. Replies do not appear in the main timeline.',
      ...doc,
      summary: 'The replies of a thread, oldest first',
      params: MessageParams,
      querystring: RepliesQuery,
      response: { 200: RepliesPage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      messages.listReplies(tenantContext(request), request.params.message_id, request.query),
  });

  app.patch('/v1/messages/:message_id', {
    config: asUser,
    schema: {
      operationId: 'editMessage',
      description:
        "Replaces a message's text; the sender only, while the conversation is not archived. The previous version is kept (`GET …/edits`); mentions are recomputed; members receive `message.updated`.",
      ...doc,
      summary: "Edit a message's text (the sender only); the previous text is kept",
      params: MessageParams,
      body: EditMessageBody,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      messages.editMessage(tenantContext(request), request.params.message_id, request.body),
  });

  app.get('/v1/messages/:message_id/edits', {
    config: asUser,
    schema: {
      operationId: 'listEdits',
      description:
        "The earlier versions of a message's text, oldest first (version 1 is the original), each with when it was written and replaced: the latest 100 of them for a message edited more often.",
      ...doc,
      summary: 'Earlier versions of a message, oldest first',
      params: MessageParams,
      response: { 200: EditList, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => messages.listEdits(tenantContext(request), request.params.message_id),
  });

  app.delete('/v1/messages/:message_id', {
    config: asUser,
    schema: {
      operationId: 'deleteMessage',
      description:
        'Deletes a message: the sender, or an ADMIN or OWNER. It stays in history as a tombstone that keeps its seq (no gaps), without text, attachments or reactions; stored files are removed. Members receive `message.deleted`.',
      ...doc,
      summary: 'Delete a message (the sender, or an ADMIN/OWNER); the tombstone keeps its seq',
      params: MessageParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) => {
      await messages.deleteMessage(tenantContext(request), request.params.message_id);
      return reply.code(204).send(null);
    },
  });
}
