import { Type, type Static } from 'typebox';
import { count, EXAMPLE, Uuid } from '../../http/schemas.ts';

/** A member's read state of one conversation (POST …/read, and each entry of GET /v1/unread). */
export const ReadState = Type.Object(
  {
    conversation_id: Uuid,
    last_read_seq: count(),
    unread_count: count(),
    mention_count: count(),
  },
  {
    title: 'ReadState',
    examples: [
      { conversation_id: EXAMPLE.conversationId, last_read_seq: 42, unread_count: 0, mention_count: 0 },
    ],
  },
);

/** GET /v1/unread: totals, and the conversations with something unread. */
export const Unread = Type.Object(
  {
    total_unread: count(),
    total_mentions: count(),
    conversations: Type.Array(ReadState, {
      description: 'Conversations with unread messages, most unread first',
    }),
  },
  {
    title: 'Unread',
    examples: [
      {
        total_unread: 2,
        total_mentions: 1,
        conversations: [
          { conversation_id: EXAMPLE.channelId, last_read_seq: 15, unread_count: 2, mention_count: 1 },
        ],
      },
    ],
  },
);

/** GET /v1/unread's body. */
export type UnreadSummary = Static<typeof Unread>;
