import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalBus } from '../src/realtime/bus.ts';
import { DEFAULT_HUB_TIMINGS } from '../src/realtime/connection.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { actingAs, bearer, createTenant, putUser, type TestTenant } from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

// Two apps on one database, each with a bus of its own: `a` and `b` are two processes whose bus is down
// between them, so `b` learns of a change made through `a` only from its periodic look at the database
// (every 300 ms here). `a` looks only every minute: what it does within a test, it learnt from its bus.
// `c` is cut off like `b` but also looks only every minute: within a test, only its per-frame look at the
// database can stop it carrying out a frame.
const hubTimings = { ...DEFAULT_HUB_TIMINGS, credentialCheckMs: 300 };
let a: TestApp;
let b: TestApp;
let c: TestApp;
let baseA = '';
let baseB = '';
let baseC = '';

beforeAll(async () => {
  a = await buildTestApp(await createTestDatabase(), {
    hubTimings: { ...hubTimings, credentialCheckMs: 60_000 },
  });
  b = await buildTestApp(a.database, {
    hubTimings,
    bus: createLocalBus(),
    adminToken: a.adminToken,
    serverKey: a.serverKey,
  });
  c = await buildTestApp(a.database, {
    hubTimings: { ...hubTimings, credentialCheckMs: 60_000 },
    bus: createLocalBus(),
    adminToken: a.adminToken,
    serverKey: a.serverKey,
  });
  baseA = await listenForSockets(a);
  baseB = await listenForSockets(b);
  baseC = await listenForSockets(c);
});

afterAll(async () => {
  await c.app.close();
  await b.app.close();
  await a.app.close();
  await a.database.drop();
});

/** A tenant with alice and bob in one group, and its conversation. */
async function setup(): Promise<{ tenant: TestTenant; conversationId: string }> {
  const tenant = await createTenant(a);
  for (const userId of ['alice', 'bob']) await putUser(a, tenant, userId);
  const created = await a.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: actingAs(tenant, 'alice'),
    payload: { type: 'group', members: ['bob'] },
  });
  return { tenant, conversationId: created.json<{ id: string }>().id };
}

/** A user token the tenant signs itself with a key, living `seconds`. */
function sign(key: { id: string; secret: string }, userId: string, seconds = 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: key.id })
    .setSubject(userId)
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(key.secret));
}

async function connect(base: string, token: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${base}/v1/ws?access_token=${token}`);
  await socket.waitFor((frame) => frame.type === 'ready');
  return socket;
}

/** The close reason the server gave, once the socket closed. */
function closeOf(socket: TestSocket, timeoutMs = 3000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
    socket.socket.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

const admin = () => bearer(a.adminToken);

async function newKey(tenant: TestTenant): Promise<{ id: string; secret: string }> {
  const response = await a.app.inject({
    method: 'POST',
    url: `/v1/admin/tenants/${tenant.id}/api-keys`,
    headers: admin(),
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string; secret: string }>();
}

async function revoke(tenant: TestTenant, keyId: string): Promise<void> {
  const response = await a.app.inject({
    method: 'DELETE',
    url: `/v1/admin/tenants/${tenant.id}/api-keys/${keyId}`,
    headers: admin(),
  });
  expect(response.statusCode, response.body).toBe(200);
}

describe('credentials end the sockets standing on them', () => {
  for (const [where, base] of [
    ['on the process that made the change', () => baseA],
    ['on a process the bus does not reach', () => baseB],
  ] as const) {
    it(`revoking a key closes its sockets with 4401, ${where}, and no other socket`, async () => {
      const { tenant } = await setup();
      const other = await newKey(tenant);
      const onKey = await connect(base(), await sign(tenant.apiKey, 'alice'));
      const onOther = await connect(base(), await sign(other, 'bob'));
      const closed = closeOf(onKey);
      await revoke(tenant, tenant.apiKey.id);
      expect((await closed).code).toBe(4401);
      expect((await closed).reason).toMatch(/api key has been revoked/);
      onOther.send({ type: 'ping', ref: 'p' });
      await onOther.waitFor((frame) => frame.type === 'pong');
      expect(onOther.closeCode).toBeNull();
      await onOther.close();
    });

    it(`deleting a tenant closes its sockets with 4401, ${where}`, async () => {
      const { tenant } = await setup();
      const bystander = await setup();
      const socket = await connect(base(), await sign(tenant.apiKey, 'alice'));
      const unrelated = await connect(base(), await sign(bystander.tenant.apiKey, 'alice'));
      const closed = closeOf(socket);
      const response = await a.app.inject({
        method: 'DELETE',
        url: `/v1/admin/tenants/${tenant.id}`,
        headers: admin(),
      });
      expect(response.statusCode).toBe(204);
      expect((await closed).code).toBe(4401);
      expect((await closed).reason).toMatch(/tenant has been deleted|revoked or its tenant deleted/);
      expect(unrelated.closeCode).toBeNull();
      await unrelated.close();
    });

    it(`erasing a user closes that user's sockets with 4401, ${where}`, async () => {
      const { tenant } = await setup();
      const alice = await connect(base(), await sign(tenant.apiKey, 'alice'));
      const bob = await connect(base(), await sign(tenant.apiKey, 'bob'));
      const closed = closeOf(alice);
      const response = await a.app.inject({
        method: 'DELETE',
        url: '/v1/users/alice',
        headers: bearer(tenant.apiKey.secret),
      });
      expect(response.statusCode).toBe(204);
      expect(await closed).toEqual({ code: 4401, reason: 'user has been erased' });
      bob.send({ type: 'ping', ref: 'p' });
      await bob.waitFor((frame) => frame.type === 'pong');
      await bob.close();
    });
  }

  it('closes a socket with 4401 when its token expires', async () => {
    const { tenant } = await setup();
    const socket = await connect(baseA, await sign(tenant.apiKey, 'alice', 2));
    const closed = closeOf(socket, 5000);
    expect(await closed).toEqual({ code: 4401, reason: 'token has expired' });
  });

  it('refuses a send frame that arrives after the revocation, and stores nothing', async () => {
    const { tenant, conversationId } = await setup();
    const other = await newKey(tenant);
    const socket = await connect(baseA, await sign(tenant.apiKey, 'alice'));
    // The client stops reading: it does not see the close, and its frames still leave for the server.
    const transport = (socket.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    transport.pause();
    await revoke(tenant, tenant.apiKey.id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.send({ type: 'send', ref: 's', conversation_id: conversationId, text: 'after the revocation' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    transport.resume();
    expect(await socket.waitForClose()).toBe(4401);
    expect(socket.frames.some((frame) => frame.type === 'ack')).toBe(false);

    const history = await a.app.inject({
      method: 'GET',
      url: `/v1/conversations/${conversationId}/messages`,
      headers: { ...bearer(other.secret), 'x-parley-user': 'alice' },
    });
    expect(history.statusCode, history.body).toBe(200);
    expect(history.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it('refuses a frame that reaches a process the bus has not told yet, and ends its socket', async () => {
    const { tenant, conversationId } = await setup();
    const other = await newKey(tenant);
    const socket = await connect(baseC, await sign(tenant.apiKey, 'alice'));
    const reader = { ...bearer(other.secret), 'x-parley-user': 'alice' };
    socket.send({ type: 'send', ref: 'before', conversation_id: conversationId, text: 'before' });
    await socket.waitFor((frame) => frame.type === 'ack' && frame.ref === 'before');

    await revoke(tenant, tenant.apiKey.id);
    // `c` heard nothing: its socket is open, and only the frame's own look at the database can refuse it.
    expect(socket.closeCode).toBeNull();
    const closed = closeOf(socket);
    socket.send({ type: 'send', ref: 'after', conversation_id: conversationId, text: 'after' });
    socket.send({ type: 'read', ref: 'read', conversation_id: conversationId });
    const refused = await socket.waitFor((frame) => frame.type === 'error' && frame.ref === 'after');
    expect(refused).toMatchObject({ code: 'unauthorized' });
    expect(await closed).toEqual({ code: 4401, reason: 'api key has been revoked or its tenant deleted' });
    expect(socket.frames.some((frame) => frame.type === 'ack' && frame.ref !== 'before')).toBe(false);

    const history = await a.app.inject({
      method: 'GET',
      url: `/v1/conversations/${conversationId}/messages`,
      headers: reader,
    });
    expect(history.json<{ data: { text: string }[] }>().data.map((message) => message.text)).toEqual([
      'before',
    ]);
  });
});
