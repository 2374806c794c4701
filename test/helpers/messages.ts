import { expect } from 'vitest';
import type { TestApp } from './app.ts';
import { asUser, createTenant, putUser, type MessageBody, type TestTenant } from './factories.ts';

// What the message tests share: a group to write in, sends and history pages as a user.

export interface HistoryBody {
  data: MessageBody[];
  has_more_before: boolean;
  has_more_after: boolean;
}

/** The message helpers, bound to one test app. */
export function messageHelpers(t: TestApp) {
  const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

  /** A tenant with users and a group owned by alice with everyone else as MEMBER. */
  async function groupWith(...others: string[]) {
    const tenant = await createTenant(t);
    for (const userId of ['alice', ...others]) await putUser(t, tenant, userId);
    const created = await as(tenant, 'alice').post('/v1/conversations', {
      type: 'group',
      name: 'g',
      members: others,
    });
    expect(created.statusCode, created.body).toBe(201);
    return { tenant, id: created.json<{ id: string }>().id };
  }

  async function send(
    tenant: TestTenant,
    userId: string,
    conversationId: string,
    payload: object,
  ): Promise<MessageBody> {
    const response = await as(tenant, userId).post(`/v1/conversations/${conversationId}/messages`, payload);
    expect(response.statusCode, response.body).toBe(201);
    return response.json<MessageBody>();
  }

  const history = async (tenant: TestTenant, userId: string, id: string, query = '') =>
    (await as(tenant, userId).get(`/v1/conversations/${id}/messages${query}`)).json<HistoryBody>();

  return { as, groupWith, send, history };
}
