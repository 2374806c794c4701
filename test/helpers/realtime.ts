import { beforeAll, expect } from 'vitest';
import { listenForSockets, useTestApp, type TestApp } from './app.ts';
import { actingAs, createTenant, mintUserToken, putUser, type TestTenant } from './factories.ts';
import { TestSocket } from './ws-client.ts';

// What the real-time tests share: a group to talk in, sockets that have said `ready`, and sends over HTTP.

/** A tenant, its group conversation, and a way to mint its users' tokens. */
export interface GroupSetup {
  tenant: TestTenant;
  conversationId: string;
  token: (userId: string) => Promise<string>;
}

/** A tenant with alice (OWNER), bob and carol in one group, and dave, a user outside it. */
export async function groupOfThree(t: TestApp): Promise<GroupSetup> {
  const tenant = await createTenant(t);
  for (const userId of ['alice', 'bob', 'carol', 'dave']) await putUser(t, tenant, userId);
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: actingAs(tenant, 'alice'),
    payload: { type: 'group', members: ['bob', 'carol'] },
  });
  return {
    tenant,
    conversationId: created.json<{ id: string }>().id,
    token: (userId) => mintUserToken(t, tenant, userId),
  };
}

/** Opens a socket at `base` (ws://…) with a token (and a resume cursor), and waits for `ready`. */
export async function connectReady(base: string, token: string, cursor?: string): Promise<TestSocket> {
  const query = new URLSearchParams({ access_token: token, ...(cursor === undefined ? {} : { cursor }) });
  const socket = await TestSocket.open(`${base}/v1/ws?${query.toString()}`);
  await socket.waitFor((frame) => frame.type === 'ready');
  return socket;
}

/** Sends a message to the setup's group over HTTP as `userId`, expecting 201. */
export async function sendOverHttp(
  t: TestApp,
  s: GroupSetup,
  userId: string,
  text: string,
  extra: object = {},
): Promise<{ id: string; seq: number }> {
  const response = await t.app.inject({
    method: 'POST',
    url: `/v1/conversations/${s.conversationId}/messages`,
    headers: actingAs(s.tenant, userId),
    payload: { text, ...extra },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string; seq: number }>();
}

/**
 * A test app listening for sockets, for one test file, with the helpers above bound to it: `base()` is the
 * ws:// address once the app listens (after the file's `beforeAll`).
 */
export function useRealtimeApp() {
  const t = useTestApp();
  const listening = { base: '' };
  beforeAll(async () => {
    listening.base = await listenForSockets(t);
  });
  return {
    t,
    base: () => listening.base,
    setup: () => groupOfThree(t),
    connect: (token: string, cursor?: string) => connectReady(listening.base, token, cursor),
    sendRest: (s: GroupSetup, userId: string, text: string, extra: object = {}) =>
      sendOverHttp(t, s, userId, text, extra),
  };
}
