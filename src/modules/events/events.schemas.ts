import { Type, type Static, type TSchema } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../../errors.ts';
import { text, timestamp, Timestamp, Uuid } from '../../http/schemas.ts';
import { Conversation, RoleSchema } from '../conversations/conversations.schemas.ts';
import { Message, SeqOrZero } from '../messages/messages.schemas.ts';
import { AttachmentView } from '../attachments/attachments.schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';

// The event contract: every event's payload and envelope, and every frame of /v1/ws, once. The socket,
// /v1/sync (and its OpenAPI), the AsyncAPI document, the services that record events and the test that
// checks every event the database holds all take their shapes from here (docs/REALTIME.md).

/** A position in the event log, opaque to clients (events.cursor.ts makes and reads it). */
export const EventCursor = Type.String({
  pattern: '^[A-Za-z0-9_-]+$',
  minLength: 1,
  maxLength: 8192,
  description: 'Resume from here to receive what follows; opaque, never parse it',
  examples: ['eyJwcmV2IjoiMjY0MjoyNjQyOiIsImF0IjoxNzk1MzIyMDQwMzc0fQ'],
});

// Payloads (`data`) -------------------------------------------------------------------------------------

const { properties: conversation } = Conversation;
/** A conversation as events carry it to every member: the fields that are the same for every viewer. */
export const ConversationEventData = Type.Object(
  {
    id: conversation.id,
    type: conversation.type,
    name: conversation.name,
    topic: conversation.topic,
    metadata: conversation.metadata,
    created_by: conversation.created_by,
    member_count: conversation.member_count,
    created_at: conversation.created_at,
    updated_at: conversation.updated_at,
    archived_at: conversation.archived_at,
  },
  { title: 'ConversationEventData' },
);
export type ConversationEventData = Static<typeof ConversationEventData>;

const ConversationCreatedData = Type.Object({
  ...ConversationEventData.properties,
  member_ids: Type.Array(UserIdSchema, {
    minItems: 1,
    maxItems: 1001,
    description: 'The creator first, then the other members (at most 1,000 of them)',
  }),
});

/** A message as events carry it: `reactions[].me` is always false (an event goes to every member at once). */
export const MessageEventData = Type.Object(Message.properties, {
  title: 'MessageEventData',
  description: 'The message as the API shows it, reactions[].me false',
});
export type MessageEventData = Static<typeof MessageEventData>;

/** An attachment of a sent message that processing changed (`pending` to `ready` or `rejected`). */
const AttachmentEventData = Type.Object({
  message_id: Uuid,
  attachment: AttachmentView,
});

const MemberData = Type.Object({ user_id: UserIdSchema, role: RoleSchema });
const UserData = Type.Object({ user_id: UserIdSchema });
const ReactionData = Type.Object({
  message_id: Uuid,
  emoji: text(66, { minLength: 1 }),
  user_id: UserIdSchema,
});

// Envelopes ---------------------------------------------------------------------------------------------

const Ts = timestamp({
  description: 'Logged events: when the writing transaction started; typing and presence: when sent',
});

/** A logged event (read from the log, replayed by /v1/sync): it has a cursor, and no seq. */
function logged<T extends string, D extends TSchema>(type: T, data: D) {
  return Type.Object({
    type: Type.Literal(type),
    conversation_id: Uuid,
    cursor: EventCursor,
    data,
    ts: Ts,
  });
}

/** A logged event about one message (`message.*`, `reaction.*`): it carries that message's seq too. */
function loggedOfMessage<T extends string, D extends TSchema>(type: T, data: D) {
  return Type.Object({
    type: Type.Literal(type),
    conversation_id: Uuid,
    seq: Message.properties.seq,
    cursor: EventCursor,
    data,
    ts: Ts,
  });
}

/** An ephemeral event (typing, presence): never stored, never replayed, so no cursor and no seq. */
function ephemeral<T extends string, D extends TSchema>(type: T, data: D) {
  return Type.Object({ type: Type.Literal(type), conversation_id: Uuid, data, ts: Ts });
}

/** One logged event as /v1/sync and sockets carry it (every event the log holds), discriminated by `type`. */
export const LoggedEvent = Type.Union(
  [
    logged('conversation.created', ConversationCreatedData),
    logged('conversation.updated', ConversationEventData),
    logged('conversation.deleted', Type.Object({ id: Uuid })),
    logged('member.added', MemberData),
    logged('member.updated', MemberData),
    logged('member.removed', UserData),
    loggedOfMessage('message.created', MessageEventData),
    loggedOfMessage('message.updated', MessageEventData),
    loggedOfMessage('message.deleted', MessageEventData),
    loggedOfMessage('attachment.updated', AttachmentEventData),
    loggedOfMessage('reaction.added', ReactionData),
    loggedOfMessage('reaction.removed', ReactionData),
    logged('read.updated', Type.Object({ user_id: UserIdSchema, last_read_seq: SeqOrZero })),
  ],
  { description: 'An event read from the log' },
);
export type LoggedEvent = Static<typeof LoggedEvent>;

/** Any event a socket receives: the logged ones, and those the hub sends as they happen and never stores. */
export const ServerEvent = Type.Union(
  [
    ...LoggedEvent.anyOf,
    ephemeral('typing.started', UserData),
    ephemeral('typing.stopped', UserData),
    ephemeral(
      'presence.changed',
      Type.Object({
        user_id: UserIdSchema,
        status: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
      }),
    ),
  ],
  { description: 'An event' },
);
export type ServerEvent = Static<typeof ServerEvent>;

export type LoggedEventType = LoggedEvent['type'];
export type EventType = ServerEvent['type'];
/** The payload of one event type. */
export type EventData<T extends EventType> = Extract<ServerEvent, { type: T }>['data'];

/** An event to record, as the service that made the change describes it; `data` must match its type. */
export type NewEvent = {
  [T in LoggedEventType]: {
    type: T;
    data: EventData<T>;
    seq?: number | null;
    /** The user the event is about: it receives the event even when not a member. */
    subjectUserId?: string | null;
    /** Only for its subject (a user's own read state). */
    isPrivate?: boolean;
  };
}[LoggedEventType];

/** A recorded event, as the log's reader returns it. */
export type StoredEvent = {
  [T in LoggedEventType]: {
    id: number;
    /** The writing transaction's id (xid8 as text). */
    tx: string;
    conversationId: string;
    type: T;
    seq: number | null;
    subjectUserId: string | null;
    isPrivate: boolean;
    data: EventData<T>;
    createdAt: Date;
  };
}[LoggedEventType];

// Frames of /v1/ws --------------------------------------------------------------------------------------

/** The query string of the upgrade to /v1/ws; anything else is refused before the handshake. */
export const WsQuery = Type.Object(
  {
    access_token: Type.Optional(
      Type.String({ maxLength: 4096, description: 'A user token: authenticated at once' }),
    ),
    cursor: Type.Optional(
      Type.String({ maxLength: 8192, description: 'Resume: receive what followed this cursor first' }),
    ),
  },
  { additionalProperties: false },
);

/** The headers of the upgrade to /v1/ws that Parley reads (documentation: the gateway parses them itself). */
export const WsHeaders = Type.Object({
  authorization: Type.Optional(
    Type.String({
      pattern: '^[Bb][Ee][Aa][Rr][Ee][Rr] +\\S+$',
      description:
        'Bearer <user token>: authenticated at once, as over HTTP (not with ?access_token= as well)',
    }),
  ),
});

const Ref = Type.Optional(
  Type.String({ maxLength: 128, description: 'Echoed in the ack, error or pong the frame causes' }),
);
const ConversationId = Type.String({ format: 'uuid' });

/** Every frame a client may send (docs/REALTIME.md, "Client → server"). */
export const ClientFrame = Type.Union([
  Type.Object(
    { type: Type.Literal('auth'), token: Type.String({ maxLength: 4096 }), ref: Ref },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('send'),
      ref: Ref,
      conversation_id: ConversationId,
      // Optional when attachment_ids names files, as over HTTP.
      text: Type.Optional(Type.String({ maxLength: 10_000, pattern: '^[^\\u0000]*$' })),
      client_msg_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      thread_root_id: Type.Optional(Type.String({ format: 'uuid' })),
      attachment_ids: Type.Optional(
        Type.Array(Type.String({ format: 'uuid' }), { maxItems: 10, uniqueItems: true }),
      ),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('read'), ref: Ref, conversation_id: ConversationId, seq: Type.Optional(SeqOrZero) },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('typing.start'), ref: Ref, conversation_id: ConversationId },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('typing.stop'), ref: Ref, conversation_id: ConversationId },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('ping'), ref: Ref }, { additionalProperties: false }),
]);
export type ClientFrame = Static<typeof ClientFrame>;

const ErrorCodeSchema = Type.Enum(Object.keys(ERROR_CODES) as ErrorCode[], {
  description: 'One of the HTTP error codes (docs/ERRORS.md)',
});

/** Every frame the server sends (docs/REALTIME.md, "Server → client"). */
export const ServerFrame = Type.Union([
  Type.Object({
    type: Type.Literal('ready'),
    user_id: UserIdSchema,
    connection_id: Uuid,
    server_time: Timestamp,
    cursor: EventCursor,
  }),
  Type.Object({ type: Type.Literal('event'), event: ServerEvent }),
  Type.Object({
    type: Type.Literal('ack'),
    ref: Ref,
    message: Type.Optional(
      Type.Object(Message.properties, { description: 'For `send`: the message, as the sender sees it' }),
    ),
  }),
  Type.Object({
    type: Type.Literal('error'),
    ref: Ref,
    code: ErrorCodeSchema,
    detail: Type.String(),
  }),
  Type.Object({ type: Type.Literal('pong'), ref: Ref }),
]);
export type ServerFrame = Static<typeof ServerFrame>;
