import { Type, type Static } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import {
  count,
  EXAMPLE,
  MediaTypeName,
  Metadata,
  Nullable,
  Sha256Hex,
  text,
  Timestamp,
  Uuid,
} from '../../http/schemas.ts';
import { MAX_FILE_NAME_LENGTH } from '../../media/file-names.ts';
import { RoleSchema } from '../conversations/conversations.schemas.ts';
import {
  MAX_SUBSCRIPTIONS_PER_USER,
  PUSH_SUBSCRIPTION_EXAMPLE,
  PushSubscription,
} from '../push/push.schemas.ts';
import { UserIdSchema } from './user-id.ts';

const UserName = text(200, { minLength: 1 });
const AvatarUrl = Type.String({ maxLength: 2048, pattern: '^https?://', format: 'uri' });

const ALICE = {
  id: 'alice',
  name: 'Alice',
  avatar_url: null,
  metadata: {},
  created_at: EXAMPLE.time,
  updated_at: EXAMPLE.time,
};

export const User = Type.Object(
  {
    id: UserIdSchema,
    name: Nullable(UserName),
    avatar_url: Nullable(AvatarUrl),
    metadata: Metadata,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  {
    title: 'User',
    examples: [ALICE],
  },
);

export const UserParams = Type.Object({ user_id: UserIdSchema });
export type UserParams = Static<typeof UserParams>;

export const UpsertUserBody = Type.Object(
  {
    name: Type.Optional(Nullable(UserName)),
    avatar_url: Type.Optional(Nullable(AvatarUrl)),
    metadata: Type.Optional(Metadata),
  },
  {
    title: 'UpsertUserBody',
    additionalProperties: false,
    examples: [{ name: 'Alice', metadata: { plan: 'pro' } }],
  },
);

export const ListUsersQuery = Type.Object(
  {
    query: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Prefix of the id or the name' }),
    ),
    limit: Type.Optional(LimitSchema),
    cursor: Type.Optional(CursorSchema),
  },
  { additionalProperties: false },
);

export const UserPage = PageSchema('UserPage', User, {
  data: [
    ALICE,
    {
      id: 'bob',
      name: 'Bob',
      avatar_url: 'https://cdn.example.com/avatars/bob.png',
      metadata: { plan: 'pro' },
      created_at: '2026-11-22T10:00:00.000Z',
      updated_at: '2026-11-22T11:30:00.000Z',
    },
  ],
  next_cursor: 'WyJib2IiXQ',
});

export const UserExport = Type.Object(
  {
    user: User,
    memberships: Type.Array(
      Type.Object({
        conversation_id: Uuid,
        role: RoleSchema,
        joined_at: Timestamp,
        last_read_seq: count(),
        muted_until: Nullable(Timestamp),
      }),
    ),
    messages: Type.Array(
      Type.Object({
        id: Uuid,
        conversation_id: Uuid,
        seq: count({ minimum: 1 }),
        text: Nullable(text(10_000)),
        thread_root_id: Nullable(Uuid),
        metadata: Metadata,
        attachments: Type.Array(
          Type.Object({
            id: Uuid,
            name: text(MAX_FILE_NAME_LENGTH, { minLength: 1 }),
            content_type: MediaTypeName,
            size: count(),
            sha256: Sha256Hex,
            created_at: Timestamp,
          }),
          {
            maxItems: 10,
            description: 'The files sent with it (fetch their bytes with GET /v1/attachments/{id})',
          },
        ),
        created_at: Timestamp,
        edited_at: Nullable(Timestamp),
        deleted_at: Nullable(Timestamp),
      }),
      { description: 'Every message the user sent, oldest first; deleted ones as tombstones' },
    ),
    reactions: Type.Array(
      Type.Object({
        message_id: Uuid,
        emoji: text(66, { minLength: 1 }),
        created_at: Timestamp,
      }),
    ),
    push_subscriptions: Type.Array(PushSubscription, {
      maxItems: MAX_SUBSCRIPTIONS_PER_USER,
      description:
        "The user's Web Push subscriptions (their browsers' endpoints and keys), newest first, as " +
        'GET /v1/me/push-subscriptions lists them',
    }),
    exported_at: Timestamp,
  },
  {
    title: 'UserExport',
    examples: [
      {
        user: ALICE,
        memberships: [
          {
            conversation_id: EXAMPLE.conversationId,
            role: 'OWNER',
            joined_at: EXAMPLE.time,
            last_read_seq: 42,
            muted_until: null,
          },
        ],
        messages: [
          {
            id: EXAMPLE.messageId,
            conversation_id: EXAMPLE.conversationId,
            seq: 42,
            text: 'Ship it, @bob!',
            thread_root_id: null,
            metadata: {},
            attachments: [],
            created_at: EXAMPLE.time,
            edited_at: '2026-11-22T10:05:00.000Z',
            deleted_at: null,
          },
        ],
        reactions: [{ message_id: EXAMPLE.messageId, emoji: '👍', created_at: '2026-11-22T10:01:00.000Z' }],
        push_subscriptions: [PUSH_SUBSCRIPTION_EXAMPLE],
        exported_at: '2026-11-23T08:00:00.000Z',
      },
    ],
  },
);
