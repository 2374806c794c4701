import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  AddMembersBody,
  Conversation,
  ConversationPage,
  ConversationParams,
  CreateConversationBody,
  ListChannelsQuery,
  ListConversationsQuery,
  ListMembersQuery,
  Member,
  MemberList,
  MemberPage,
  MemberParams,
  UpdateConversationBody,
  UpdateMemberBody,
  UpdateSettingsBody,
} from './conversations.schemas.ts';
import type { ConversationsService } from './conversations.service.ts';

const asUser = { auth: 'user' } as const;
const tags = ['conversations'];
const security: Array<Record<string, string[]>> = [{ userToken: [] }, { apiKey: [] }];
const doc = { tags, security };

/** /v1/conversations and /v1/channels: conversations, membership and roles. */
export function registerConversationRoutes(app: App, conversations: ConversationsService): void {
  app.post('/v1/conversations', {
    config: asUser,
    schema: {
      operationId: 'createConversation',
      ...doc,
      summary: 'Create a conversation',
      description:
        'The creator is OWNER (MEMBER in a direct conversation). Creating a direct conversation that exists ' +
        'already, from either side, returns it with 200.',
      body: CreateConversationBody,
      response: { 200: Conversation, 201: Conversation, ...errorResponses('forbidden') },
    },
    handler: async (request, reply) => {
      const result = await conversations.createConversation(tenantContext(request), request.body);
      return reply.code(result.created ? 201 : 200).send(result.conversation);
    },
  });

  app.get('/v1/conversations', {
    config: asUser,
    schema: {
      operationId: 'listConversations',
      description:
        "The conversations the caller is a member of, most recent activity first, each with the caller's role, unread and mention counts, mute state and latest message. Filter by `type`, and by `archived` (true: only archived, false: only active).",
      ...doc,
      summary: "The caller's conversations, most recent activity first",
      querystring: ListConversationsQuery,
      response: { 200: ConversationPage, ...errorResponses('forbidden') },
    },
    handler: (request) =>
      conversations.listConversations(tenantContext(request), {
        ...request.query,
        limit: request.query.limit ?? 50,
      }),
  });

  app.get('/v1/channels', {
    config: asUser,
    schema: {
      operationId: 'listChannels',
      description:
        "The tenant's channels (open to every user), newest first, whether or not the caller is a member; with `query`, those whose name starts with it. Join one with `POST /v1/conversations/{id}/join`.",
      ...doc,
      summary: "Discover the tenant's channels, newest first",
      querystring: ListChannelsQuery,
      response: { 200: ConversationPage, ...errorResponses('forbidden') },
    },
    handler: (request) =>
      conversations.listChannels(tenantContext(request), {
        ...request.query,
        limit: request.query.limit ?? 50,
      }),
  });

  app.get('/v1/conversations/:conversation_id', {
    config: asUser,
    schema: {
      operationId: 'getConversation',
      description:
        "One conversation with the caller's own state in it. A group or direct conversation the caller is not a member of is 404, as for an id that does not exist.",
      ...doc,
      summary: 'Read a conversation',
      params: ConversationParams,
      response: { 200: Conversation, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      conversations.getConversation(tenantContext(request), request.params.conversation_id),
  });

  app.patch('/v1/conversations/:conversation_id', {
    config: asUser,
    schema: {
      operationId: 'updateConversation',
      description:
        'Changes the name, topic or metadata of a group or channel; members receive `conversation.updated`. ADMIN and above; not while archived.',
      ...doc,
      summary: 'Rename, change the topic or metadata (ADMIN and above)',
      params: ConversationParams,
      body: UpdateConversationBody,
      response: { 200: Conversation, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      conversations.updateConversation(tenantContext(request), request.params.conversation_id, request.body),
  });

  app.delete('/v1/conversations/:conversation_id', {
    config: asUser,
    schema: {
      operationId: 'deleteConversation',
      description:
        'Deletes the conversation for everyone: it leaves every list, its messages are no longer readable, and members receive `conversation.deleted`. OWNER only.',
      ...doc,
      summary: 'Delete a conversation (OWNER); it disappears from every list',
      params: ConversationParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) => {
      await conversations.deleteConversation(tenantContext(request), request.params.conversation_id);
      return reply.code(204).send(null);
    },
  });

  for (const [action, isArchived] of [
    ['archive', true],
    ['unarchive', false],
  ] as const) {
    app.post(`/v1/conversations/:conversation_id/${action}`, {
      config: asUser,
      schema: {
        operationId: `${action}Conversation`,
        description: isArchived
          ? 'Archives a conversation: it stays readable but takes no new messages, edits or reactions until ' +
            'unarchived. ADMIN and above.'
          : 'Makes an archived conversation writable again. ADMIN and above.',
        ...doc,
        summary: isArchived
          ? 'Archive a conversation: read-only until unarchived (ADMIN and above)'
          : 'Unarchive a conversation (ADMIN and above)',
        params: ConversationParams,
        response: { 200: Conversation, ...errorResponses('forbidden', 'not_found') },
      },
      handler: (request) =>
        conversations.setArchived(tenantContext(request), request.params.conversation_id, isArchived),
    });
  }

  app.post('/v1/conversations/:conversation_id/join', {
    config: asUser,
    schema: {
      operationId: 'joinConversation',
      description:
        'Joins a channel as MEMBER; joining one already joined changes nothing. Groups and direct conversations are by invitation only.',
      ...doc,
      summary: 'Join a channel as MEMBER',
      params: ConversationParams,
      response: { 200: Conversation, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) => conversations.joinChannel(tenantContext(request), request.params.conversation_id),
  });

  app.post('/v1/conversations/:conversation_id/leave', {
    config: asUser,
    schema: {
      operationId: 'leaveConversation',
      description:
        'Leaves a group or channel (a direct conversation cannot be left). The last OWNER must make another member OWNER first.',
      ...doc,
      summary: 'Leave a group or channel; the last OWNER must make another member OWNER first',
      params: ConversationParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) => {
      await conversations.leaveConversation(tenantContext(request), request.params.conversation_id);
      return reply.code(204).send(null);
    },
  });

  app.get('/v1/conversations/:conversation_id/members', {
    config: asUser,
    schema: {
      operationId: 'listMembers',
      description:
        "The conversation's members with their roles and join times, ordered by user id, a page at a time.",
      ...doc,
      summary: 'Members, ordered by user id',
      params: ConversationParams,
      querystring: ListMembersQuery,
      response: { 200: MemberPage, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      conversations.listMembers(tenantContext(request), request.params.conversation_id, {
        ...request.query,
        limit: request.query.limit ?? 50,
      }),
  });

  app.post('/v1/conversations/:conversation_id/members', {
    config: asUser,
    schema: {
      operationId: 'addMembers',
      ...doc,
      summary: 'Add members (ADMIN and above; an ADMIN grants roles below ADMIN)',
      description:
        'Users who are members already keep their role. Returns the membership of every named user.',
      params: ConversationParams,
      body: AddMembersBody,
      response: { 200: MemberList, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      conversations.addMembers(tenantContext(request), request.params.conversation_id, request.body),
  });

  app.patch('/v1/conversations/:conversation_id/members/:user_id', {
    config: asUser,
    schema: {
      operationId: 'updateMember',
      description:
        "Changes a member's role: an ADMIN may grant and change roles below ADMIN, an OWNER any role. Members receive `member.updated`.",
      ...doc,
      summary: "Change a member's role (ADMIN: below ADMIN only; OWNER: any role)",
      params: MemberParams,
      body: UpdateMemberBody,
      response: { 200: Member, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      conversations.updateMember(
        tenantContext(request),
        request.params.conversation_id,
        request.params.user_id,
        request.body,
      ),
  });

  app.delete('/v1/conversations/:conversation_id/members/:user_id', {
    config: asUser,
    schema: {
      operationId: 'removeMember',
      description:
        'Removes a member (ADMIN and above, within the same role rules as changing a role), or the caller itself. The last OWNER cannot go. Members receive `member.removed`.',
      ...doc,
      summary: 'Remove a member (ADMIN and above), or yourself',
      params: MemberParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) => {
      await conversations.removeMember(
        tenantContext(request),
        request.params.conversation_id,
        request.params.user_id,
      );
      return reply.code(204).send(null);
    },
  });

  app.patch('/v1/conversations/:conversation_id/settings', {
    config: asUser,
    schema: {
      operationId: 'updateConversationSettings',
      description:
        "The caller's own settings in the conversation, seen by nobody else: `muted_until` mutes its notifications (pushes) until then; null unmutes.",
      ...doc,
      summary: "The caller's own settings in the conversation",
      params: ConversationParams,
      body: UpdateSettingsBody,
      response: { 200: Conversation, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) =>
      conversations.updateSettings(tenantContext(request), request.params.conversation_id, request.body),
  });
}
