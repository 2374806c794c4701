import { Type, type Static } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import { count, EXAMPLE, Metadata, Nullable, timestamp, Timestamp, Uuid } from '../../http/schemas.ts';
import { Message, MESSAGE_EXAMPLE } from '../messages/messages.schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';

const EXAMPLE_TIME = EXAMPLE.time;

export const ConversationTypeSchema = Type.Union(
  [Type.Literal('direct'), Type.Literal('group'), Type.Literal('channel')],
  {
    description:
      'direct: two people, one per pair · group: private, by invitation · channel: open to the tenant',
  },
);
export const RoleSchema = Type.Union(
  [Type.Literal('OWNER'), Type.Literal('ADMIN'), Type.Literal('MEMBER'), Type.Literal('VIEWER')],
  { description: 'Role in the conversation (see the role table in the API docs)' },
);

const Name = Type.String({ minLength: 1, maxLength: 200, examples: ['design-team'] });
const Topic = Type.String({ minLength: 1, maxLength: 1000, examples: ['Weekly design review'] });

export const Conversation = Type.Object(
  {
    id: Uuid,
    type: ConversationTypeSchema,
    name: Nullable(Name),
    topic: Nullable(Topic),
    metadata: Metadata,
    created_by: UserIdSchema,
    member_count: count(),
    created_at: Timestamp,
    updated_at: Timestamp,
    archived_at: Nullable(Timestamp),
    role: Nullable(RoleSchema),
    muted: Type.Boolean({ description: "Whether the caller's notifications are muted now" }),
    muted_until: Nullable(Timestamp),
    unread_count: count({ description: "Other people's unread main-timeline messages" }),
    mention_count: count({ description: 'Unread messages that mention the caller' }),
    last_message: Nullable(Message, { description: 'The latest main-timeline message' }),
  },
  {
    title: 'Conversation',
    examples: [
      {
        id: EXAMPLE.conversationId,
        type: 'group',
        name: 'design-team',
        topic: null,
        metadata: {},
        created_by: 'alice',
        member_count: 3,
        created_at: EXAMPLE_TIME,
        updated_at: EXAMPLE_TIME,
        archived_at: null,
        role: 'OWNER',
        muted: false,
        muted_until: null,
        unread_count: 0,
        mention_count: 0,
        last_message: null,
      },
    ],
  },
);
export type ConversationView = Static<typeof Conversation>;

export const Member = Type.Object(
  { user_id: UserIdSchema, role: RoleSchema, joined_at: Timestamp },
  { title: 'Member', examples: [{ user_id: 'bob', role: 'MEMBER', joined_at: EXAMPLE_TIME }] },
);
export type MemberView = Static<typeof Member>;

export const ConversationParams = Type.Object({ conversation_id: Uuid });
export const MemberParams = Type.Object({ conversation_id: Uuid, user_id: UserIdSchema });

export const CreateConversationBody = Type.Object(
  {
    type: ConversationTypeSchema,
    name: Type.Optional(Name),
    topic: Type.Optional(Topic),
    members: Type.Optional(
      Type.Array(UserIdSchema, {
        maxItems: 1000,
        uniqueItems: true,
        description: 'Other users to add as MEMBERs; exactly one for a direct conversation',
      }),
    ),
    metadata: Type.Optional(Metadata),
  },
  {
    title: 'CreateConversationBody',
    additionalProperties: false,
    examples: [
      { type: 'group', name: 'design-team', members: ['bob', 'carol'] },
      { type: 'direct', members: ['bob'] },
      { type: 'channel', name: 'general', topic: 'Company-wide announcements' },
    ],
  },
);
export type CreateConversationInput = Static<typeof CreateConversationBody>;

export const UpdateConversationBody = Type.Object(
  {
    name: Type.Optional(Nullable(Name)),
    topic: Type.Optional(Nullable(Topic)),
    metadata: Type.Optional(Metadata),
  },
  {
    title: 'UpdateConversationBody',
    additionalProperties: false,
    minProperties: 1,
    examples: [{ name: 'design', topic: 'All things design' }],
  },
);
export type UpdateConversationInput = Static<typeof UpdateConversationBody>;

export const ListConversationsQuery = Type.Object(
  {
    type: Type.Optional(ConversationTypeSchema),
    archived: Type.Optional(Type.Boolean({ description: 'Only archived (true) or only active (false)' })),
    limit: Type.Optional(LimitSchema),
    cursor: Type.Optional(CursorSchema),
  },
  { additionalProperties: false },
);
export type ListConversationsQuery = Static<typeof ListConversationsQuery>;

export const ListChannelsQuery = Type.Object(
  {
    query: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Prefix of the channel name' }),
    ),
    limit: Type.Optional(LimitSchema),
    cursor: Type.Optional(CursorSchema),
  },
  { additionalProperties: false },
);

export const ListMembersQuery = Type.Object(
  { limit: Type.Optional(LimitSchema), cursor: Type.Optional(CursorSchema) },
  { additionalProperties: false },
);

export const AddMembersBody = Type.Object(
  {
    user_ids: Type.Array(UserIdSchema, { minItems: 1, maxItems: 1000, uniqueItems: true }),
    role: Type.Optional(RoleSchema),
  },
  {
    title: 'AddMembersBody',
    additionalProperties: false,
    examples: [{ user_ids: ['dave', 'erin'], role: 'MEMBER' }],
  },
);
export type AddMembersInput = Static<typeof AddMembersBody>;

export const UpdateMemberBody = Type.Object(
  { role: RoleSchema },
  { title: 'UpdateMemberBody', additionalProperties: false, examples: [{ role: 'ADMIN' }] },
);

export const UpdateSettingsBody = Type.Object(
  {
    muted_until: Nullable(timestamp({ description: 'Mute notifications until then; null unmutes' })),
  },
  {
    title: 'UpdateSettingsBody',
    additionalProperties: false,
    examples: [{ muted_until: '2099-01-01T00:00:00.000Z' }, { muted_until: null }],
  },
);

// Both lists of conversations answer with this page: its example is a channel, which either may show.
const CHANNEL_MESSAGE_EXAMPLE = {
  ...MESSAGE_EXAMPLE,
  id: '019a9b74-7c8d-7e9f-8a0b-2c3d4e5f6a7b',
  conversation_id: EXAMPLE.channelId,
  seq: 17,
  sender_id: 'carol',
  text: 'All hands at 3pm: @alice, can you share the deck?',
  mentions: ['alice'],
  reactions: [],
  client_msg_id: null,
  created_at: '2026-11-22T09:30:00.000Z',
};
export const ConversationPage = PageSchema('ConversationPage', Conversation, {
  data: [
    {
      id: EXAMPLE.channelId,
      type: 'channel',
      name: 'general',
      topic: 'Company-wide announcements',
      metadata: {},
      created_by: 'carol',
      member_count: 42,
      created_at: '2026-11-02T08:00:00.000Z',
      updated_at: '2026-11-02T08:00:00.000Z',
      archived_at: null,
      role: 'MEMBER',
      muted: false,
      muted_until: null,
      unread_count: 2,
      mention_count: 1,
      last_message: CHANNEL_MESSAGE_EXAMPLE,
    },
  ],
  next_cursor: 'WyIyMDI2LTExLTIyVDA5OjMwOjAwLjAwMFoiLCIwMTlhOWI1ZC00ZTVmLTdhNmItOGM3ZC05ZTBmMWEyYjNjNGQiXQ',
});
export const MemberPage = PageSchema('MemberPage', Member, {
  data: [
    { user_id: 'alice', role: 'OWNER', joined_at: EXAMPLE_TIME },
    { user_id: 'bob', role: 'MEMBER', joined_at: EXAMPLE_TIME },
  ],
  next_cursor: 'WyJib2IiXQ',
});
export const MemberList = Type.Object(
  { data: Type.Array(Member, { maxItems: 1000 }) },
  {
    title: 'MemberList',
    examples: [
      {
        data: [
          { user_id: 'dave', role: 'MEMBER', joined_at: '2026-11-22T10:10:00.000Z' },
          { user_id: 'erin', role: 'MEMBER', joined_at: '2026-11-22T10:10:00.000Z' },
        ],
      },
    ],
  },
);
