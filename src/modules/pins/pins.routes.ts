import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses } from '../../http/schemas.ts';
import {
  ConversationMessagesParams,
  Message,
  MessagePage,
  MessageParams,
  PageQuery,
} from '../messages/messages.schemas.ts';
import type { PinsService } from './pins.service.ts';

const asUser = { auth: 'user' } as const;
const doc = {
  tags: ['pins'],
  security: [{ userToken: [] }, { apiKey: [] }] as Array<Record<string, string[]>>,
};

/** Pinning messages (ADMIN and above) and listing the pins of a conversation. */
export function registerPinRoutes(app: App, pins: PinsService): void {
  app.post('/v1/messages/:message_id/pin', {
    config: asUser,
    schema: {
      operationId: 'pinMessage',
      description:
        'Pins a message to its conversation (pinning a pinned one changes nothing). ADMIN and above.',
      ...doc,
      summary: 'Pin a message (ADMIN and above)',
      params: MessageParams,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) => pins.pinMessage(tenantContext(request), request.params.message_id),
  });

  app.delete('/v1/messages/:message_id/pin', {
    config: asUser,
    schema: {
      operationId: 'unpinMessage',
      description: 'Unpins a message. ADMIN and above.',
      ...doc,
      summary: 'Unpin a message (ADMIN and above)',
      params: MessageParams,
      response: { 200: Message, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) => pins.unpinMessage(tenantContext(request), request.params.message_id),
  });

  app.get('/v1/conversations/:conversation_id/pins', {
    config: asUser,
    schema: {
      operationId: 'listPins',
      description: "The conversation's pinned messages, most recently pinned first, a page at a time.",
      ...doc,
      summary: 'Pinned messages, most recently pinned first',
      params: ConversationMessagesParams,
      querystring: PageQuery,
      response: { 200: MessagePage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      pins.listPins(tenantContext(request), request.params.conversation_id, request.query),
  });
}
