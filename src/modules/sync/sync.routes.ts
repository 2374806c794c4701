import { Type } from 'typebox';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, EXAMPLE } from '../../http/schemas.ts';
import { EventCursor, LoggedEvent } from '../events/events.schemas.ts';
import { REPLY_EXAMPLE } from '../messages/messages.schemas.ts';
import type { SyncService } from './sync.service.ts';

const SyncQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({ minLength: 1, maxLength: 8192, description: 'A cursor; left out: the present cursor' }),
    ),
    limit: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

const SyncPage = Type.Object(
  {
    events: Type.Array(LoggedEvent, { maxItems: 1000 }),
    next_cursor: EventCursor,
    has_more: Type.Boolean(),
  },
  {
    examples: [
      {
        events: [
          {
            type: 'reaction.added',
            conversation_id: EXAMPLE.conversationId,
            seq: 42,
            cursor:
              'eyJwcmV2IjoiMjY0MjoyNjQyOiIsIm5vdyI6IjI2NTA6MjY1MDoiLCJhZnRlcklkIjoxMDQxLCJhdCI6MTc5NTM0MTYwMDAwMH0',
            data: { message_id: EXAMPLE.messageId, emoji: '👍', user_id: 'bob' },
            ts: '2026-11-22T10:01:30.000Z',
          },
          {
            type: 'message.created',
            conversation_id: EXAMPLE.conversationId,
            seq: 43,
            cursor:
              'eyJwcmV2IjoiMjY0MjoyNjQyOiIsIm5vdyI6IjI2NTA6MjY1MDoiLCJhZnRlcklkIjoxMDQyLCJhdCI6MTc5NTM0MTYwMDAwMH0',
            data: REPLY_EXAMPLE,
            ts: REPLY_EXAMPLE.created_at,
          },
          {
            type: 'member.added',
            conversation_id: EXAMPLE.conversationId,
            cursor:
              'eyJwcmV2IjoiMjY0MjoyNjQyOiIsIm5vdyI6IjI2NTA6MjY1MDoiLCJhZnRlcklkIjoxMDQzLCJhdCI6MTc5NTM0MTYwMDAwMH0',
            data: { user_id: 'dave', role: 'MEMBER' },
            ts: '2026-11-22T10:10:00.000Z',
          },
        ],
        next_cursor: 'eyJwcmV2IjoiMjY1MDoyNjUwOiIsImF0IjoxNzk1MzQyMjA1MDAwfQ',
        has_more: false,
      },
    ],
  },
);

/** GET /v1/sync: the events a client missed, for a gap-free resume after a reconnect. */
export function registerSyncRoutes(app: App, sync: SyncService): void {
  app.get('/v1/sync', {
    config: { auth: 'user' },
    schema: {
      operationId: 'sync',
      tags: ['real time'],
      security: [{ userToken: [] }, { apiKey: [] }],
      summary: 'Every event the caller missed since a cursor, oldest first, each exactly once',
      description:
        "Events of the caller's conversations (messages, edits, deletes, reactions, membership, conversation " +
        'changes) and its own read state, in commit order per conversation. Typing and presence are not ' +
        'replayed. A cursor older than the event retention answers 410 cursor_expired: reload state.',
      querystring: SyncQuery,
      response: { 200: SyncPage, 410: Type.Ref('Problem'), ...errorResponses('forbidden') },
    },
    // The schema documents the page; the page is written as it is, like the same events on the socket. The
    // events are the log's, each shaped by toEventFrame; matching each against the union of envelopes
    // would make a row this process's contract does not know (an event type a newer process writes during
    // a rolling deploy, which clients ignore) fail the whole page with a 500, and cost a dozen schema
    // checks per event. The tests hold every event the suite writes to the contract (test/helpers/database.ts).
    serializerCompiler: () => (data) => JSON.stringify(data),
    handler: (request) => sync.sync(tenantContext(request), request.query),
  });
}
