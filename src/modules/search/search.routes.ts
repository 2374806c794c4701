import { Type } from 'typebox';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { CursorSchema, NextCursor } from '../../http/pagination.ts';
import { errorResponses, Nullable, timestamp, uuid } from '../../http/schemas.ts';
import { Message, MESSAGE_EXAMPLE } from '../messages/messages.schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';
import { MAX_HIGHLIGHT_LENGTH, type SearchService } from './search.service.ts';

const SearchQuery = Type.Object(
  {
    q: Type.String({
      minLength: 1,
      maxLength: 500,
      description:
        'Words (stemmed), "exact phrases", -excluded words; substrings in Chinese, Japanese and similar',
      examples: ['deploy "release notes" -draft'],
    }),
    conversation_id: Type.Optional(uuid()),
    sender_id: Type.Optional(UserIdSchema),
    since: Type.Optional(timestamp()),
    until: Type.Optional(timestamp()),
    has_attachments: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: 200, default: 20 })),
    cursor: Type.Optional(CursorSchema),
  },
  { additionalProperties: false },
);
const SearchResults = Type.Object(
  {
    data: Type.Array(
      Type.Object({
        message: Message,
        highlight: Type.String({
          maxLength: MAX_HIGHLIGHT_LENGTH,
          description: 'HTML-escaped snippet with the matches in <mark>',
        }),
      }),
      { maxItems: 200 },
    ),
    next_cursor: Nullable(NextCursor),
  },
  {
    examples: [
      { data: [{ message: MESSAGE_EXAMPLE, highlight: '<mark>Ship</mark> it @bob?' }], next_cursor: null },
    ],
  },
);

/** Message search. */
export function registerSearchRoutes(app: App, search: SearchService): void {
  app.get('/v1/search/messages', {
    config: { auth: 'user' },
    schema: {
      operationId: 'searchMessages',
      description:
        "Full-text search (PostgreSQL text search) over the messages of the conversations the caller is a member of, best match first; filter by conversation, sender, time and `has_attachments`. Deleted messages and other users' conversations never match.",
      tags: ['search'],
      security: [{ userToken: [] }, { apiKey: [] }],
      summary: 'Search the messages of the conversations the caller is a member of, best match first',
      querystring: SearchQuery,
      response: { 200: SearchResults, ...errorResponses('forbidden') },
    },
    handler: (request) => search.searchMessages(tenantContext(request), request.query),
  });
}
