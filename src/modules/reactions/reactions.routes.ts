import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses } from '../../http/schemas.ts';
import {
  Message,
  MessageParams,
  PageQuery,
  ReactionPage,
  ReactionParams,
} from '../messages/messages.schemas.ts';
import type { ReactionsService } from './reactions.service.ts';

const asUser = { auth: 'user' } as const;
const doc = {
  tags: ['reactions'],
  security: [{ userToken: [] }, { apiKey: [] }] as Array<Record<string, string[]>>,
};

/** /v1/messages/{id}/reactions. */
export function registerReactionRoutes(app: App, reactions: ReactionsService): void {
  app.put('/v1/messages/:message_id/reactions/:emoji', {
    config: asUser,
    schema: {
      operationId: 'addReaction',
      ...doc,
      summary: 'React to a message (idempotent); returns the message',
      description:
        '{emoji} is one emoji grapheme (URL-encoded) or a :short_name: of 1–64 characters. A message carries at ' +
        'most 50 different emoji: a reaction with a 51st is 409 `conflict` (any of the 50 is still taken).',
      params: ReactionParams,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      reactions.addReaction(tenantContext(request), request.params.message_id, request.params.emoji),
  });

  app.delete('/v1/messages/:message_id/reactions/:emoji', {
    config: asUser,
    schema: {
      operationId: 'removeReaction',
      description:
        "Removes the caller's reaction with this emoji; removing one that is not there changes nothing and answers the same. Returns the message with its reactions.",
      ...doc,
      summary: "Remove the caller's reaction (idempotent); returns the message",
      params: ReactionParams,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      reactions.removeReaction(tenantContext(request), request.params.message_id, request.params.emoji),
  });

  app.get('/v1/messages/:message_id/reactions', {
    config: asUser,
    schema: {
      operationId: 'listReactions',
      description:
        "Who reacted to a message with which emoji, a page at a time: the detail behind the message's reaction counts.",
      ...doc,
      summary: 'Who reacted with what',
      params: MessageParams,
      querystring: PageQuery,
      response: { 200: ReactionPage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      reactions.listReactions(tenantContext(request), request.params.message_id, request.query),
  });
}
