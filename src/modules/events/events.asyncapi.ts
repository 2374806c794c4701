import type { TSchema } from 'typebox';
import { ClientFrame, ServerEvent, ServerFrame, WsHeaders, WsQuery } from './events.schemas.ts';

// The AsyncAPI 3.0 document of /v1/ws, made from the event contract (events.schemas.ts) and served at
// GET /asyncapi.json: one message per client frame type, per server frame type, and per event type (the
// `event` frame carrying it), so a client generator gets every payload exactly as the socket sends it.

/** A TypeBox object schema whose `type` property is a literal: a frame or an event envelope. */
interface Typed {
  properties: { type: { const: string } };
}

const typeOf = (schema: Typed) => schema.properties.type.const;

/** The types of the frames a client sends. */
export const clientFrameTypes = (): string[] => ClientFrame.anyOf.map(typeOf);
/** The types of the frames the server sends, `event` aside (it is listed per event type). */
export const serverFrameTypes = (): string[] =>
  ServerFrame.anyOf.map(typeOf).filter((type) => type !== 'event');
/** Every event type, logged or not. */
export const eventTypes = (): string[] => ServerEvent.anyOf.map(typeOf);

/** An AsyncAPI message whose payload is `schema`. */
function message(name: string, summary: string, payload: TSchema) {
  return { name, title: name, summary, contentType: 'application/json', payload };
}

const ref = (name: string) => ({ $ref: `#/components/messages/${name}` });

/** The AsyncAPI 3.0 document of the real-time gateway. */
export function buildAsyncApiDocument() {
  const messages: Record<string, ReturnType<typeof message>> = {};
  for (const frame of ClientFrame.anyOf) {
    messages[typeOf(frame)] = message(typeOf(frame), `The client's ${typeOf(frame)} frame`, frame);
  }
  for (const frame of ServerFrame.anyOf) {
    if (typeOf(frame) === 'event') continue;
    messages[typeOf(frame)] = message(typeOf(frame), `The server's ${typeOf(frame)} frame`, frame);
  }
  for (const event of ServerEvent.anyOf) {
    messages[typeOf(event)] = message(typeOf(event), `An event frame carrying ${typeOf(event)}`, {
      type: 'object',
      required: ['type', 'event'],
      properties: { type: { type: 'string', const: 'event' }, event },
    });
  }
  const channelRef = { $ref: '#/channels/socket' };
  const channelMessageRef = (name: string) => ({ $ref: `#/channels/socket/messages/${name}` });
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Parley real time',
      version: '1',
      description:
        'The WebSocket gateway: one socket per device, JSON text frames both ways. Authenticate with ' +
        'Authorization: Bearer on the upgrade, ?access_token= or an auth frame within 5 seconds; frames ' +
        'sent before ready wait for it. Resume with ?cursor=. The protocol in prose, ' +
        'with close codes and limits, is docs/REALTIME.md.',
    },
    defaultContentType: 'application/json',
    channels: {
      socket: {
        address: '/v1/ws',
        title: 'The real-time socket',
        messages: Object.fromEntries(Object.keys(messages).map((name) => [name, ref(name)])),
        bindings: { ws: { method: 'GET', query: WsQuery, headers: WsHeaders, bindingVersion: '0.1.0' } },
      },
    },
    operations: {
      receiveClientFrames: {
        action: 'receive',
        channel: channelRef,
        summary: 'Frames a client sends',
        messages: clientFrameTypes().map(channelMessageRef),
      },
      sendServerFrames: {
        action: 'send',
        channel: channelRef,
        summary: 'Frames the server sends: ready, answers to frames, and events',
        messages: [...serverFrameTypes(), ...eventTypes()].map(channelMessageRef),
      },
    },
    components: { messages },
  };
}
