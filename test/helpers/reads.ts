import Value from 'typebox/value';
import { expect } from 'vitest';
import { Unread } from '../../src/modules/reads/reads.schemas.ts';
import type { TestApp } from './app.ts';
import { asUser, createTenantWithUsers, sendText, type MessageBody, type TestTenant } from './factories.ts';

// What the read-state tests share: sending, reading and deleting as a user, and reading the unread state
// back through every route that shows it, each answer checked against its contract.

export interface ReadState {
  conversation_id: string;
  last_read_seq: number;
  unread_count: number;
  mention_count: number;
}

export interface UnreadBody {
  total_unread: number;
  total_mentions: number;
  conversations: ReadState[];
}

export interface ConversationBody {
  id: string;
  role: string | null;
  unread_count: number;
  mention_count: number;
  last_message: MessageBody | null;
}

export interface Problem {
  errors?: { path: string; message: string }[];
}

/** The read-state helpers, bound to one test app. */
export function readHelpers(t: TestApp) {
  const tenantWithUsers = (...userIds: string[]) => createTenantWithUsers(t, ...userIds);

  const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

  async function createGroup(tenant: TestTenant, owner: string, members: string[]): Promise<string> {
    const response = await as(tenant, owner).post('/v1/conversations', { type: 'group', members });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ id: string }>().id;
  }

  const send = (
    tenant: TestTenant,
    userId: string,
    conversationId: string,
    text: string,
    threadRootId?: string,
  ) => sendText(t, tenant, userId, conversationId, text, threadRootId);

  async function deleteMessage(tenant: TestTenant, userId: string, messageId: string): Promise<void> {
    const response = await as(tenant, userId).delete(`/v1/messages/${messageId}`);
    expect(response.statusCode, response.body).toBe(204);
  }

  async function markRead(
    tenant: TestTenant,
    userId: string,
    conversationId: string,
    payload?: object,
  ): Promise<ReadState> {
    const response = await as(tenant, userId).post(`/v1/conversations/${conversationId}/read`, payload);
    expect(response.statusCode, response.body).toBe(200);
    return response.json<ReadState>();
  }

  /**
   * GET /v1/unread, checked against its contract on every call: the database builds the body's JSON text and
   * the server passes it on, so nothing else holds it to the response schema, the order (most unread first,
   * ties by conversation id), the totals, or the rule that only conversations with something unread appear.
   */
  async function unreadOf(tenant: TestTenant, userId: string): Promise<UnreadBody> {
    const response = await as(tenant, userId).get('/v1/unread');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = response.json<UnreadBody>();
    expect([...Value.Errors(Unread, body)]).toEqual([]);
    expect(Object.keys(body)).toEqual(['total_unread', 'total_mentions', 'conversations']);
    const sorted = [...body.conversations].sort(
      (a, b) =>
        b.unread_count - a.unread_count ||
        (a.conversation_id < b.conversation_id ? -1 : a.conversation_id > b.conversation_id ? 1 : 0),
    );
    expect(body.conversations).toEqual(sorted);
    expect(body.conversations.every((row) => row.unread_count > 0 || row.mention_count > 0)).toBe(true);
    expect(body.total_unread).toBe(body.conversations.reduce((sum, row) => sum + row.unread_count, 0));
    expect(body.total_mentions).toBe(body.conversations.reduce((sum, row) => sum + row.mention_count, 0));
    return body;
  }

  async function conversationsOf(tenant: TestTenant, userId: string): Promise<ConversationBody[]> {
    const response = await as(tenant, userId).get('/v1/conversations?limit=200');
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ data: ConversationBody[] }>().data;
  }

  /** The caller's unread state of one conversation as GET /v1/unread reports it (zeros when it is not listed). */
  async function stateIn(tenant: TestTenant, userId: string, conversationId: string) {
    const unread = await unreadOf(tenant, userId);
    const row = unread.conversations.find((item) => item.conversation_id === conversationId);
    return { unread_count: row?.unread_count ?? 0, mention_count: row?.mention_count ?? 0 };
  }

  return {
    tenantWithUsers,
    as,
    createGroup,
    send,
    deleteMessage,
    markRead,
    unreadOf,
    conversationsOf,
    stateIn,
  };
}
