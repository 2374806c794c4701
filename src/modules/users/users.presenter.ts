import type { Static } from 'typebox';
import type { UserRow } from './users.repository.ts';
import type { User } from './users.schemas.ts';

/** A user as the API shows it. */
export type UserView = Static<typeof User>;

export const toUserView = (row: UserRow): UserView => ({
  id: row.id,
  name: row.name,
  avatar_url: row.avatarUrl,
  metadata: row.metadata,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
});
