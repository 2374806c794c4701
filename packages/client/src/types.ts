// Names for the generated types an application uses most. Everything here is derived from the generated
// files (src/generated/), which `npm run client:types` makes from the server's OpenAPI and AsyncAPI
// documents: nothing is kept by hand.
import type { components as rest, paths } from './generated/openapi.js';
import type { components as realtime } from './generated/asyncapi.js';

export type { paths, operations, components } from './generated/openapi.js';

type Schemas = rest['schemas'];
export type Problem = Schemas['Problem'];
/** A stable error code of docs/ERRORS.md. */
export type ErrorCode = Problem['code'];
export type Message = Schemas['Message'];
export type Conversation = Schemas['Conversation'];
export type Member = Schemas['Member'];
export type User = Schemas['User'];
export type Unread = Schemas['Unread'];
export type HistoryPage = Schemas['HistoryPage'];
export type SendMessageBody = Schemas['SendMessageBody'];
export type AttachmentView = Schemas['AttachmentView'];

/** A page of `GET /v1/sync`. */
export type SyncPage = paths['/v1/sync']['get']['responses'][200]['content']['application/json'];

/** Every event the server emits, logged (with a `cursor`) or ephemeral (typing, presence). */
export type ParleyEvent = realtime['schemas']['Event'];
/** Every event type. */
export type EventType = ParleyEvent['type'];
/** The event of one type, e.g. `EventOf<'message.created'>`. */
export type EventOf<T extends EventType> = Extract<ParleyEvent, { type: T }>;

/** A frame a client sends on the socket. */
export type ClientFrame = realtime['schemas']['ClientFrame'];
/** A frame the server sends on the socket. */
export type ServerFrame = realtime['schemas']['ServerFrame'];
export type ReadyFrame = Extract<ServerFrame, { type: 'ready' }>;
