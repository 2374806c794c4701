import type { Static } from 'typebox';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { requireBackend, type TenantContext } from '../../context.ts';
import { notFound } from '../../errors.ts';
import { assertMetadataSize } from '../../metadata.ts';
import { cursorText, decodeCursor, toPage } from '../../http/pagination.ts';
import {
  ensureUserRow,
  erasedUserIds,
  findUser,
  searchUsers,
  upsertUserRow,
  type UserProfilePatch,
} from './users.repository.ts';
import { toUserView, type UserView } from './users.presenter.ts';
import type { UpsertUserBody } from './users.schemas.ts';

/** Input of `upsertUser`: each field optional; omitted fields keep their value, null clears. */
export type UpsertUserInput = Static<typeof UpsertUserBody>;

/**
 * User use cases: profiles and lookup. Erasure and export, which reach into every module that holds
 * something of a user's, are use cases of their own (`user-erasure.ts`, `user-export.ts`).
 */
export function createUsersService({ orm }: { orm: Orm }) {
  return {
    /** Creates a user the first time a credential names it; tells whether it was erased. */
    ensureUser(tenantId: string, userId: string): Promise<'active' | 'erased'> {
      return inTenant(orm, tenantId, (scope) => ensureUserRow(scope, userId));
    },

    /** Creates or updates a profile (tenant backend only). */
    async upsertUser(
      ctx: TenantContext,
      userId: string,
      input: UpsertUserInput,
    ): Promise<{ user: UserView; created: boolean }> {
      requireBackend(ctx, 'update user profiles');
      assertMetadataSize(input.metadata, '/body/metadata');
      const patch: UserProfilePatch = {
        name: input.name,
        avatarUrl: input.avatar_url,
        metadata: input.metadata,
      };
      const { row, created } = await inTenant(orm, ctx.tenantId, (scope) =>
        upsertUserRow(scope, userId, patch),
      );
      return { user: toUserView(row), created };
    },

    /** Any live user of the caller's tenant. */
    async getUser(ctx: TenantContext, userId: string): Promise<UserView> {
      const row = await inTenant(orm, ctx.tenantId, (scope) => findUser(scope, userId));
      if (!row) throw notFound('user');
      return toUserView(row);
    },

    /** Users whose id or name starts with `query`, ordered by id, keyset paged. */
    async listUsers(ctx: TenantContext, input: { query?: string; cursor?: string; limit: number }) {
      const afterId = input.cursor === undefined ? undefined : cursorText(decodeCursor(input.cursor, 1)[0]);
      const rows = await inTenant(orm, ctx.tenantId, (scope) =>
        searchUsers(scope, { prefix: input.query, afterId, limit: input.limit + 1 }),
      );
      return toPage(rows.map(toUserView), input.limit, (user) => [user.id]);
    },

    /** Which of these users of the tenant were erased: the real-time hub ends their sockets. */
    erasedUserIds(tenantId: string, userIds: readonly string[]): Promise<string[]> {
      return inTenant(orm, tenantId, (scope) => erasedUserIds(scope, userIds));
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
