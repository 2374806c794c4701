import { beforeAll, describe, expect, it } from 'vitest';
import { listenForSockets, useTestApp } from './helpers/app.ts';
import { actingAs, createTenantWithUsers, mintUserToken } from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

// The same code as production with short timings, so heartbeats, typing expiry and the offline grace can be
// watched within a test.
const t = useTestApp(
  {
    allowedOrigins: [],
    wsMaxConnectionsPerUser: 20,
    wsMaxFramesPerSecond: 1000,
    pingIntervalMs: 100,
    silenceLimitMs: 300,
  },
  { maxBufferedBytes: 4 * 1024 * 1024, safetyPollMs: 2000, typingExpiresMs: 300, offlineAfterMs: 300 },
);
let base = '';

beforeAll(async () => {
  base = await listenForSockets(t);
});

async function group() {
  const tenant = await createTenantWithUsers(t, 'alice', 'bob');
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: actingAs(tenant, 'alice'),
    payload: { type: 'group', members: ['bob'] },
  });
  const connect = async (userId: string) => {
    const socket = await TestSocket.open(
      `${base}/v1/ws?access_token=${await mintUserToken(t, tenant, userId)}`,
    );
    await socket.waitFor((frame) => frame.type === 'ready');
    return socket;
  };
  return { tenant, id: created.json<{ id: string }>().id, connect };
}

describe('timings', () => {
  it('keeps a socket that answers pings, and drops one that falls silent', async () => {
    const g = await group();
    const lively = await g.connect('alice');
    const silent = await g.connect('bob');
    // Stop reading the TCP stream: pings go unanswered.
    (silent.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(lively.closeCode).toBeNull();
    (silent.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await silent.waitForClose(3000)).toBe(1006);
    await lively.close();
  });

  it('ends typing that is not renewed, and announces offline after the grace period', async () => {
    const g = await group();
    const alice = await g.connect('alice');
    const bob = await g.connect('bob');
    bob.send({ type: 'typing.start', conversation_id: g.id });
    await alice.waitFor((frame) => frame.event?.type === 'typing.started');
    await alice.waitFor((frame) => frame.event?.type === 'typing.stopped', 2000);
    await bob.close();
    const offline = await alice.waitFor(
      (frame) => frame.event?.type === 'presence.changed' && frame.event.data.status === 'offline',
      3000,
    );
    expect(offline.event?.data).toEqual({ user_id: 'bob', status: 'offline' });
    await alice.close();
  });
});
