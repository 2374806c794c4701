import { Type, type Static } from 'typebox';
import { CursorSchema, LimitSchema, NextCursor } from '../../http/pagination.ts';
import { count, EXAMPLE, Metadata, Nullable, text, Timestamp, Uuid } from '../../http/schemas.ts';
import { AttachmentView } from '../attachments/attachments.schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';

/**
 * The largest seq the API takes: beyond it a JSON number is no longer an exact integer, and a bigint
 * column overflows soon after (a 400, not the database's error).
 */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const Seq = Type.Integer({
  format: 'int64',
  minimum: 1,
  maximum: MAX_SEQ,
  description: 'Position in the conversation: dense, from 1',
});
/** A seq bound a client gives: 0 stands for "before the first message". */
export const SeqOrZero = count();

/** Message text: 1–10,000 Unicode code points, no NUL. */
export const MessageText = Type.String({
  minLength: 1,
  maxLength: 10_000,
  pattern: '^[^\\u0000]*$',
  description: '1–10,000 characters; @user_id mentions of members are parsed',
  examples: ['Ship it @bob?'],
});

/** A sent message's text: as `MessageText`, and optional (empty) when the message carries attachments. */
export const SendText = Type.String({
  maxLength: 10_000,
  pattern: '^[^\\u0000]*$',
  description:
    'Up to 10,000 characters; @user_id mentions of members are parsed. May be left out (or empty) when ' +
    '`attachment_ids` names files: a photo without a caption',
  examples: ['Ship it @bob?'],
});

/** The most different emoji one message carries (Slack's number): a reaction with a 51st is refused. */
export const MAX_DISTINCT_REACTIONS = 50;
/** The most users one message mentions: further `@names` stay text. */
export const MAX_MENTIONS = 100;
/** The most earlier versions `GET /v1/messages/{id}/edits` lists: the latest ones. */
export const MAX_LISTED_EDITS = 100;

/** A reaction's emoji, as the API answers it (`ReactionParams` checks what it takes). */
const Emoji = text(66, { minLength: 1, description: 'One emoji grapheme or a :short_name:' });

export const Reaction = Type.Object(
  {
    emoji: Emoji,
    count: count({ minimum: 1 }),
    me: Type.Boolean({ description: 'Whether the caller reacted with this emoji' }),
  },
  { title: 'Reaction' },
);

/** Alice's message 42 in design-team, as it is sent (later: edited at 10:05, pinned, replied to by bob). */
export const MESSAGE_EXAMPLE = {
  id: EXAMPLE.messageId,
  conversation_id: EXAMPLE.conversationId,
  seq: 42,
  sender_id: 'alice',
  text: 'Ship it @bob?',
  mentions: ['bob'],
  thread_root_id: null,
  reply_count: 0,
  last_reply_at: null,
  reactions: [{ emoji: '👍', count: 2, me: true }],
  attachments: [],
  metadata: {},
  client_msg_id: 'c-7f3a',
  pinned_at: null,
  created_at: EXAMPLE.time,
  edited_at: null,
  deleted_at: null,
};
/** Bob's answer in the thread of message 42. */
export const REPLY_EXAMPLE = {
  ...MESSAGE_EXAMPLE,
  id: EXAMPLE.replyId,
  seq: 43,
  sender_id: 'bob',
  text: 'Shipping now 🚀',
  mentions: [],
  thread_root_id: EXAMPLE.messageId,
  reactions: [],
  client_msg_id: null,
  created_at: '2026-11-22T10:02:00.000Z',
};

export const Message = Type.Object(
  {
    id: Uuid,
    conversation_id: Uuid,
    seq: Seq,
    sender_id: UserIdSchema,
    text: Nullable(text(10_000, { description: 'null once deleted' })),
    mentions: Type.Array(UserIdSchema, {
      maxItems: MAX_MENTIONS,
      description: `Members the text mentions, in order of first appearance (at most ${MAX_MENTIONS})`,
    }),
    thread_root_id: Nullable(Uuid),
    reply_count: count(),
    last_reply_at: Nullable(Timestamp),
    reactions: Type.Array(Reaction, {
      maxItems: MAX_DISTINCT_REACTIONS,
      description: `Each emoji in order of first use (at most ${MAX_DISTINCT_REACTIONS} different ones)`,
    }),
    attachments: Type.Array(AttachmentView, {
      maxItems: 10,
      description: 'Files sent with the message (`attachment_ids` of the send), links signed when shown',
    }),
    metadata: Metadata,
    client_msg_id: Nullable(text(128)),
    pinned_at: Nullable(Timestamp),
    created_at: Timestamp,
    edited_at: Nullable(Timestamp),
    deleted_at: Nullable(Timestamp),
  },
  {
    title: 'Message',
    examples: [MESSAGE_EXAMPLE],
  },
);
export type MessageView = Static<typeof Message>;

export const MessageParams = Type.Object({ message_id: Uuid });
export const ConversationMessagesParams = Type.Object({ conversation_id: Uuid });
export const ReactionParams = Type.Object({
  message_id: Uuid,
  emoji: Type.String({ minLength: 1, maxLength: 66, description: 'One emoji grapheme or a :short_name:' }),
});

const ClientMsgId = Type.String({
  minLength: 1,
  maxLength: 128,
  description: "The sender's own id for the message: a retry with the same one returns the original",
  examples: ['c-7f3a'],
});

const AttachmentIds = Type.Array(Uuid, {
  maxItems: 10,
  uniqueItems: true,
  description:
    "Up to 10 of the sender's own uploads not sent yet (POST /v1/attachments), bound to the message",
});

export const SendMessageBody = Type.Object(
  {
    text: Type.Optional(SendText),
    client_msg_id: Type.Optional(ClientMsgId),
    thread_root_id: Type.Optional(Uuid),
    attachment_ids: Type.Optional(AttachmentIds),
    metadata: Type.Optional(Metadata),
  },
  {
    title: 'SendMessageBody',
    additionalProperties: false,
    examples: [{ text: 'Ship it @bob?', client_msg_id: 'c-7f3a' }],
  },
);
export type SendMessageInput = Static<typeof SendMessageBody>;

export const DirectMessageBody = Type.Object(
  {
    to: UserIdSchema,
    text: Type.Optional(SendText),
    client_msg_id: Type.Optional(ClientMsgId),
    attachment_ids: Type.Optional(AttachmentIds),
    metadata: Type.Optional(Metadata),
  },
  { title: 'DirectMessageBody', additionalProperties: false, examples: [{ to: 'bob', text: 'Lunch?' }] },
);

export const EditMessageBody = Type.Object(
  { text: MessageText },
  { title: 'EditMessageBody', additionalProperties: false, examples: [{ text: 'Ship it, @bob!' }] },
);

export const HistoryQuery = Type.Object(
  {
    before_seq: Type.Optional(Seq),
    after_seq: Type.Optional(SeqOrZero),
    around: Type.Optional(Uuid),
    limit: Type.Optional(LimitSchema),
  },
  { additionalProperties: false },
);
export type HistoryQuery = Static<typeof HistoryQuery>;

export const HistoryPage = Type.Object(
  {
    data: Type.Array(Message, { maxItems: 200, description: 'Ascending seq' }),
    has_more_before: Type.Boolean(),
    has_more_after: Type.Boolean(),
  },
  {
    title: 'HistoryPage',
    examples: [{ data: [MESSAGE_EXAMPLE], has_more_before: true, has_more_after: false }],
  },
);

export const RepliesQuery = Type.Object(
  { after_seq: Type.Optional(SeqOrZero), limit: Type.Optional(LimitSchema) },
  { additionalProperties: false },
);
export const RepliesPage = Type.Object(
  { data: Type.Array(Message, { maxItems: 200 }), has_more_after: Type.Boolean() },
  { title: 'RepliesPage', examples: [{ data: [REPLY_EXAMPLE], has_more_after: false }] },
);

export const Edit = Type.Object(
  {
    version: count({ minimum: 1, description: '1 for the original text' }),
    text: text(10_000),
    created_at: Timestamp,
    edited_at: Timestamp,
  },
  { title: 'Edit' },
);
export const EditList = Type.Object(
  {
    data: Type.Array(Edit, {
      maxItems: MAX_LISTED_EDITS,
      description: `The latest ${MAX_LISTED_EDITS} earlier versions at most, oldest first`,
    }),
  },
  {
    title: 'EditList',
    examples: [
      {
        data: [
          {
            version: 1,
            text: 'Ship it @bob?',
            created_at: EXAMPLE.time,
            edited_at: '2026-11-22T10:05:00.000Z',
          },
        ],
      },
    ],
  },
);

export const PageQuery = Type.Object(
  { limit: Type.Optional(LimitSchema), cursor: Type.Optional(CursorSchema) },
  { additionalProperties: false },
);
export const ReactionDetail = Type.Object(
  {
    emoji: Emoji,
    user_id: UserIdSchema,
    created_at: Timestamp,
  },
  { title: 'ReactionDetail' },
);
export const ReactionPage = Type.Object(
  {
    data: Type.Array(ReactionDetail, { maxItems: 200 }),
    next_cursor: Nullable(NextCursor),
  },
  {
    title: 'ReactionPage',
    examples: [
      {
        data: [
          { emoji: '👍', user_id: 'alice', created_at: '2026-11-22T10:01:00.000Z' },
          { emoji: '👍', user_id: 'bob', created_at: '2026-11-22T10:01:30.000Z' },
        ],
        next_cursor: null,
      },
    ],
  },
);
export const MessagePage = Type.Object(
  { data: Type.Array(Message, { maxItems: 200 }), next_cursor: Nullable(NextCursor) },
  {
    title: 'MessagePage',
    examples: [{ data: [{ ...MESSAGE_EXAMPLE, pinned_at: '2026-11-22T10:06:00.000Z' }], next_cursor: null }],
  },
);
