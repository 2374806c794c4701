import { Type, type Static } from 'typebox';
import { CursorSchema, LimitSchema, PageSchema } from '../../http/pagination.ts';
import { Metadata, Nullable, Timestamp } from '../../http/schemas.ts';
import { UserIdSchema } from './user-id.ts';

export const User = Type.Object(
  {
    id: UserIdSchema,
    name: Nullable(Type.String()),
    avatar_url: Nullable(Type.String()),
    metadata: Metadata,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  {
    examples: [
      {
        id: 'alice',
        name: 'Alice',
        avatar_url: null,
        metadata: {},
        created_at: '2026-11-22T10:00:00.000Z',
        updated_at: '2026-11-22T10:00:00.000Z',
      },
    ],
  },
);

export const UserParams = Type.Object({ user_id: UserIdSchema });
export type UserParams = Static<typeof UserParams>;

export const UpsertUserBody = Type.Object(
  {
    name: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 200 }))),
    avatar_url: Type.Optional(
      Nullable(Type.String({ maxLength: 2048, pattern: '^https?://', format: 'uri' })),
    ),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false, examples: [{ name: 'Alice', metadata: { plan: 'pro' } }] },
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

export const UserPage = PageSchema(User);

export const UserExport = Type.Object({
  user: User,
  exported_at: Timestamp,
});
