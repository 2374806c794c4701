import { Type } from 'typebox';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { NextCursor } from '../../http/pagination.ts';
import { count, errorResponses } from '../../http/schemas.ts';
import {
  ConversationMessagesParams,
  MessageParams,
  PageQuery,
  MAX_SEQ,
} from '../messages/messages.schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';
import type { ReadsService } from './reads.service.ts';
import { ReadState, Unread, type UnreadSummary } from './reads.schemas.ts';
import { OPTIONAL_BODY } from '../../http/optional-body.ts';

const asUser = { auth: 'user' } as const;
const doc = {
  tags: ['read state'],
  security: [{ userToken: [] }, { apiKey: [] }] as Array<Record<string, string[]>>,
};

const ReadBody = Type.Object(
  {
    seq: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        maximum: MAX_SEQ,
        description: 'Read up to this seq; the latest when left out',
      }),
    ),
  },
  { additionalProperties: false, examples: [{ seq: 42 }, {}] },
);
const Receipts = Type.Object(
  {
    data: Type.Array(Type.Object({ user_id: UserIdSchema, last_read_seq: count() }), { maxItems: 200 }),
    next_cursor: Type.Union([NextCursor, Type.Null()]),
  },
  {
    examples: [
      {
        data: [
          { user_id: 'bob', last_read_seq: 42 },
          { user_id: 'carol', last_read_seq: 42 },
        ],
        next_cursor: null,
      },
    ],
  },
);

/** Read watermarks, unread counts and receipts. */
export function registerReadRoutes(app: App, reads: ReadsService): void {
  app.post('/v1/conversations/:conversation_id/read', {
    config: asUser,
    schema: {
      // The body is optional: a bare POST is read as `{}`.
      [OPTIONAL_BODY]: true,
      operationId: 'markRead',
      description:
        "Moves the caller's read watermark to `seq` (a body without it, or none: the latest message); it never moves back. Unread counts follow, and the caller's own sockets (every device) receive `read.updated`; other members see it through receipts.",
      ...doc,
      summary: "Move the caller's read watermark forward (never back); default: the latest message",
      params: ConversationMessagesParams,
      body: ReadBody,
      response: { 200: ReadState, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      reads.markRead(tenantContext(request), request.params.conversation_id, request.body),
  });

  app.get('/v1/unread', {
    config: asUser,
    schema: {
      operationId: 'getUnread',
      ...doc,
      summary: "The caller's unread and mention counts",
      description: "Counts other people's non-deleted main-timeline messages after the watermark.",
      response: { 200: Unread, ...errorResponses('forbidden') },
    },
    // The database builds the body (readUnreadSummary): a string with a JSON content type is sent as is.
    handler: async (request, reply) => {
      const body = await reads.getUnread(tenantContext(request));
      return reply.type('application/json; charset=utf-8').send(body as unknown as UnreadSummary);
    },
  });

  app.get('/v1/messages/:message_id/receipts', {
    config: asUser,
    schema: {
      operationId: 'listReceipts',
      description:
        "The members whose read watermark has reached this message: read receipts, a page at a time. The sender is among them (sending marks one's own message read).",
      ...doc,
      summary: 'The members whose read watermark has reached this message',
      params: MessageParams,
      querystring: PageQuery,
      response: { 200: Receipts, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      reads.listReceipts(tenantContext(request), request.params.message_id, request.query),
  });
}
