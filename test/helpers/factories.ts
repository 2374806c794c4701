import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from './app.ts';

/** A tenant made through the admin API, with its first api key. */
export interface TestTenant {
  id: string;
  apiKey: { id: string; secret: string };
}

/** Authorization header for a bearer credential. */
export const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });

/** Headers of the tenant backend acting as one of its users. */
export const actingAs = (tenant: TestTenant, userId: string) => ({
  ...bearer(tenant.apiKey.secret),
  'x-parley-user': userId,
});

/** A unique name, so tests sharing an app never collide. */
export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Creates a tenant through the admin API. */
export async function createTenant(t: TestApp, name = uniqueName('tenant')): Promise<TestTenant> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/admin/tenants',
    headers: bearer(t.adminToken),
    payload: { name },
  });
  expect(response.statusCode, response.body).toBe(201);
  const body = response.json<{ tenant: { id: string }; api_key: { id: string; secret: string } }>();
  return { id: body.tenant.id, apiKey: body.api_key };
}

/** Mints a user token through the API, as a tenant backend would. */
export async function mintUserToken(t: TestApp, tenant: TestTenant, userId: string): Promise<string> {
  const response = await t.app.inject({
    method: 'POST',
    url: `/v1/users/${encodeURIComponent(userId)}/tokens`,
    headers: bearer(tenant.apiKey.secret),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ token: string }>().token;
}

/** Creates or updates a user through the API. */
export async function putUser(
  t: TestApp,
  tenant: TestTenant,
  userId: string,
  profile: Record<string, unknown> = {},
) {
  const response = await t.app.inject({
    method: 'PUT',
    url: `/v1/users/${encodeURIComponent(userId)}`,
    headers: bearer(tenant.apiKey.secret),
    payload: profile,
  });
  expect([200, 201], response.body).toContain(response.statusCode);
  return response.json<Record<string, unknown>>();
}

/** Asserts a problem+json response with the given status and code. */
export function expectProblem(
  response: { statusCode: number; headers: Record<string, unknown>; body: string; json: () => unknown },
  status: number,
  code: string,
) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json() as {
    status: number;
    code: string;
    title: string;
    detail: string;
    type: string;
  };
  expect(problem).toMatchObject({ status, code, type: `urn:parley:error:${code}` });
  expect(problem.title).toBeTruthy();
  expect(problem.detail).toBeTruthy();
  return problem;
}

/** An item of a list: every listed resource has an id. */
export type Listed = { id: string } & Record<string, unknown>;

/** Follows `next_cursor` from `url` to the last page; returns every item and how many pages it took. */
export async function collectPages(
  t: TestApp,
  url: string,
  headers: Record<string, string>,
): Promise<{ items: Listed[]; pages: number }> {
  const items: Listed[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const separator = url.includes('?') ? '&' : '?';
    const pageUrl: string = cursor === null ? url : `${url}${separator}cursor=${encodeURIComponent(cursor)}`;
    const response = await t.app.inject({ method: 'GET', url: pageUrl, headers });
    expect(response.statusCode, response.body).toBe(200);
    const page = response.json<{ data: Listed[]; next_cursor: string | null }>();
    items.push(...page.data);
    cursor = page.next_cursor;
    pages++;
  } while (cursor !== null);
  return { items, pages };
}

/** A tenant with these users already created. */
export async function createTenantWithUsers(t: TestApp, ...userIds: string[]): Promise<TestTenant> {
  const tenant = await createTenant(t);
  for (const userId of userIds) await putUser(t, tenant, userId);
  return tenant;
}

/** Requests as one user of a tenant (the tenant backend acting through X-Parley-User). */
export function asUser(t: TestApp, tenant: TestTenant, userId: string) {
  const headers = actingAs(tenant, userId);
  return {
    get: (url: string) => t.app.inject({ method: 'GET', url, headers }),
    post: (url: string, payload?: object) =>
      t.app.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) }),
    put: (url: string, payload?: object) =>
      t.app.inject({ method: 'PUT', url, headers, ...(payload ? { payload } : {}) }),
    patch: (url: string, payload: object) => t.app.inject({ method: 'PATCH', url, headers, payload }),
    delete: (url: string) => t.app.inject({ method: 'DELETE', url, headers }),
  };
}

/** A message as the API returns it (the fields the tests read). */
export interface MessageBody {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  text: string | null;
  mentions: string[];
  thread_root_id: string | null;
  reply_count: number;
  last_reply_at: string | null;
  reactions: { emoji: string; count: number; me: boolean }[];
  client_msg_id: string | null;
  pinned_at: string | null;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
}

/** Sends a text message as `userId` (a reply when `threadRootId` is given); fails the test unless 201. */
export async function sendText(
  t: TestApp,
  tenant: TestTenant,
  userId: string,
  conversationId: string,
  text: string,
  threadRootId?: string,
): Promise<MessageBody> {
  const response = await asUser(t, tenant, userId).post(`/v1/conversations/${conversationId}/messages`, {
    text,
    ...(threadRootId === undefined ? {} : { thread_root_id: threadRootId }),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<MessageBody>();
}
