import type { App } from '../../http/app-types.ts';
import { tenantContext, userIdOf } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import { ListUsersQuery, UpsertUserBody, User, UserExport, UserPage, UserParams } from './users.schemas.ts';
import type { UserErasure } from './user-erasure.ts';
import type { UserExporter } from './user-export.ts';
import type { UsersService } from './users.service.ts';

const tags = ['users'];
const tenantCallers: Array<Record<string, string[]>> = [{ apiKey: [] }, { userToken: [] }];
const backendOnly: Array<Record<string, string[]>> = [{ apiKey: [] }];

/** /v1/users and /v1/me: profiles (the users service), erasure and export (use cases of their own). */
export function registerUserRoutes(
  app: App,
  { users, erasure, exporter }: { users: UsersService; erasure: UserErasure; exporter: UserExporter },
): void {
  app.put('/v1/users/:user_id', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'putUser',
      tags,
      security: backendOnly,
      summary: 'Create or update a user',
      description: 'Fields left out keep their current value; null clears one. Revives an erased user.',
      params: UserParams,
      body: UpsertUserBody,
      response: { 200: User, 201: User, ...errorResponses('forbidden') },
    },
    handler: async (request, reply) => {
      const { user, created } = await users.upsertUser(
        tenantContext(request),
        request.params.user_id,
        request.body,
      );
      return reply.code(created ? 201 : 200).send(user);
    },
  });

  app.get('/v1/users/:user_id', {
    config: { auth: 'tenant' },
    schema: {
      operationId: 'getUser',
      description:
        'One user of the tenant: id, name, avatar and metadata. A user that was never created (or was erased) is 404. An api key, or a user token of the same tenant.',
      tags,
      security: tenantCallers,
      summary: 'Read a user of the tenant',
      params: UserParams,
      response: { 200: User, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => users.getUser(tenantContext(request), request.params.user_id),
  });

  app.get('/v1/users', {
    config: { auth: 'tenant' },
    schema: {
      operationId: 'listUsers',
      description:
        "The tenant's users, a page at a time; with `query`, those whose id or name starts with it.",
      tags,
      security: tenantCallers,
      summary: 'List users, optionally those whose id or name starts with ?query',
      querystring: ListUsersQuery,
      response: { 200: UserPage, ...errorResponses('forbidden') },
    },
    handler: (request) =>
      users.listUsers(tenantContext(request), { ...request.query, limit: request.query.limit ?? 50 }),
  });

  app.get('/v1/me', {
    config: { auth: 'user' },
    schema: {
      operationId: 'getMe',
      description:
        "The user the caller acts as: the user token's `sub`, or `X-Parley-User` with an api key (created on first sight).",
      tags,
      security: tenantCallers,
      summary: 'The calling user',
      response: { 200: User, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => users.getUser(tenantContext(request), userIdOf(request)),
  });

  app.delete('/v1/users/:user_id', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'eraseUser',
      description:
        "Erases a user (GDPR): the profile and memberships go, the user's messages are blanked to tombstones in history and in the event log, uploads are removed, and the user's tokens and sockets stop working. An api key only.",
      tags,
      security: backendOnly,
      summary: "Erase a user: the profile is deleted and the user's tokens stop working",
      params: UserParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) => {
      await erasure.eraseUser(tenantContext(request), request.params.user_id);
      return reply.code(204).send(null);
    },
  });

  app.get('/v1/users/:user_id/export', {
    config: { auth: 'backend' },
    schema: {
      operationId: 'exportUser',
      description:
        'Everything Parley stores about a user, as one JSON document (profile, memberships, messages, reactions, push subscriptions): the answer to a data-subject access request. An api key only.',
      tags,
      security: backendOnly,
      summary: 'Everything stored about a user, as JSON',
      params: UserParams,
      response: { 200: UserExport, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => exporter.exportUser(tenantContext(request), request.params.user_id),
  });
}
