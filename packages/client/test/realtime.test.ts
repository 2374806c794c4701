import { afterEach, describe, expect, it } from 'vitest';
import {
  ParleyClient,
  ParleyError,
  type EventOf,
  type ParleyEvent,
  RealtimeClient,
  type SocketLike,
} from '../src/node.ts';
import { startProxyFor, tenantWith, useServer } from './helpers.ts';

// The real-time half of the SDK against a real server: connecting, the outbox, resuming after losses (the
// random-drop test), catching up over /v1/sync when the socket cannot connect, and a reset when the kept
// cursor cannot be resumed.

const server = useServer();
const open: { close(): void | Promise<void> }[] = [];
afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

const FAST = { backoff: { initialMs: 20, maxMs: 200 } };

/** A tenant with alice and bob in a group; a REST client for each (bob's talks to the server directly). */
async function aliceAndBob(aliceUrl = server.url()) {
  const { token } = await tenantWith(server.t, 'alice', 'bob');
  const aliceToken = await token('alice');
  const alice = new ParleyClient({ baseUrl: aliceUrl, token: aliceToken });
  const bob = new ParleyClient({ baseUrl: server.url(), token: await token('bob') });
  const group = await bob.post('/v1/conversations', {
    body: { type: 'group', name: 'g', members: ['alice'] },
  });
  return { alice, bob, conversationId: group.id, aliceToken };
}

/** Every message of a conversation, in seq order, read over REST. */
async function history(client: ParleyClient, conversationId: string) {
  const messages = [];
  let after = 0;
  for (;;) {
    const page = await client.get('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: conversationId }, query: { after_seq: after, limit: 200 } },
    });
    messages.push(...page.data);
    if (page.data.length < 200) return messages;
    after = page.data.at(-1)?.seq ?? after;
  }
}

function collect(live: ReturnType<ParleyClient['realtime']>) {
  const events: ParleyEvent[] = [];
  live.on('event', (event) => events.push(event));
  const created = (conversationId: string) =>
    events
      .filter((e): e is EventOf<'message.created'> => e.type === 'message.created')
      .filter((e) => e.conversation_id === conversationId)
      .map((e) => e.data);
  return { events, created };
}

describe('the real-time client', () => {
  it('connects, delivers typed events, and sends what was queued before ready', async () => {
    const { alice, bob, conversationId } = await aliceAndBob();
    const live = alice.realtime(FAST);
    open.push(live);
    const { created } = collect(live);
    // Sent before the socket exists: it waits in the outbox.
    const early = live.send(conversationId, { text: 'before ready' });
    expect(early.status).toBe('pending');
    const ready = await live.connect();
    expect(ready.user_id).toBe('alice');
    expect(live.state).toBe('ready');
    const message = await early.sent;
    expect(early.status).toBe('sent');
    expect(message).toMatchObject({
      text: 'before ready',
      sender_id: 'alice',
      client_msg_id: early.client_msg_id,
    });

    const fromBob = await bob.post('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: conversationId } },
      body: { text: 'hi @alice' },
    });
    await expect
      .poll(() => created(conversationId).length === 2, { message: 'both messages', timeout: 20_000 })
      .toBe(true);
    expect(created(conversationId).map((m) => m.id)).toEqual([message.id, fromBob.id]);
    expect(live.cursor).toBeTruthy();

    await live.markRead(conversationId, fromBob.seq);
    const unread = await alice.get('/v1/unread');
    expect(unread.conversations.find((c) => c.conversation_id === conversationId)).toBeUndefined();
  });

  it('marks a refused send failed and goes on with the next', async () => {
    const { alice, conversationId } = await aliceAndBob();
    const live = alice.realtime(FAST);
    open.push(live);
    await live.connect();
    const refused = live.send('019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83', { text: 'nowhere' });
    const fine = live.send(conversationId, { text: 'somewhere' });
    await expect(refused.sent).rejects.toMatchObject({ code: 'not_found' });
    expect(refused.status).toBe('failed');
    await expect(fine.sent).resolves.toMatchObject({ text: 'somewhere' });
    expect(live.outbox).toEqual([]);
  });

  // The SDK's promise: whatever the network does, the application's stream of events is exactly the
  // server's history, and what it sent is stored once each, in the order it was sent.
  it('gives a stream equal to the history while its connection drops at random', async () => {
    const { url, proxy } = await startProxyFor(server.url());
    open.push(proxy);
    const { alice, bob, conversationId } = await aliceAndBob(url);
    const live = alice.realtime(FAST);
    open.push(live);
    const { created } = collect(live);
    let readies = 0;
    live.on('ready', () => readies++);
    await live.connect();

    const dropping = { on: true, drops: 0 };
    const dropper = (async () => {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 200));
        if (!dropping.on) return;
        if (proxy.dropAll() > 0) dropping.drops++;
      }
    })();

    const outgoing = [];
    const bobSends = (async () => {
      for (let i = 0; i < 150; i++) {
        await bob.post('/v1/conversations/{conversation_id}/messages', {
          params: { path: { conversation_id: conversationId } },
          body: { text: `bob ${i}` },
        });
        if (i % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    for (let i = 0; i < 50; i++) {
      outgoing.push(live.send(conversationId, { text: `alice ${i}` }));
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await bobSends;
    await Promise.all(outgoing.map((m) => m.sent));
    dropping.on = false;
    await dropper;

    const stored = await history(bob, conversationId);
    expect(stored).toHaveLength(200);
    await expect
      .poll(() => created(conversationId).length >= stored.length, {
        message: 'the stream to catch up',
        timeout: 20_000,
      })
      .toBe(true);
    // Exactly the history: every message once, in seq order, nothing else.
    expect(created(conversationId).map((m) => m.id)).toEqual(stored.map((m) => m.id));
    expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
    // Alice's messages are stored once each, in the order she sent them.
    const alices = stored.filter((m) => m.sender_id === 'alice');
    expect(alices.map((m) => m.text)).toEqual(outgoing.map((_, i) => `alice ${i}`));
    expect(alices.map((m) => m.client_msg_id)).toEqual(outgoing.map((m) => m.client_msg_id));
    expect(outgoing.every((m) => m.status === 'sent')).toBe(true);
    // The connection really was lost, many times over.
    expect(dropping.drops).toBeGreaterThan(5);
    expect(readies).toBeGreaterThan(5);
  }, 90_000);

  it('finds a connection that went silent by its ping, and reconnects', async () => {
    const { url, proxy } = await startProxyFor(server.url());
    open.push(proxy);
    const { alice, bob, conversationId } = await aliceAndBob(url);
    const live = alice.realtime({ ...FAST, pingIntervalMs: 200, pongTimeoutMs: 300 });
    open.push(live);
    const { created } = collect(live);
    let readies = 0;
    live.on('ready', () => readies++);
    await live.connect();
    proxy.freezeAll(); // Nothing passes any more, and nothing says so.
    const sent = await bob.post('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: conversationId } },
      body: { text: 'while silent' },
    });
    await expect.poll(() => readies === 2, { message: 'a new connection', timeout: 20_000 }).toBe(true);
    await expect
      .poll(() => created(conversationId).length === 1, {
        message: 'the message sent while the connection was silent',
        timeout: 20_000,
      })
      .toBe(true);
    expect(created(conversationId).map((m) => m.id)).toEqual([sent.id]);
  });

  it('catches up over /v1/sync while the socket cannot connect', async () => {
    const { alice, bob, conversationId } = await aliceAndBob();
    // A network that lets HTTP through but no WebSocket (a proxy that refuses upgrades, say).
    const attempts: string[] = [];
    class RefusedSocket implements SocketLike {
      readyState = 3;
      onopen: SocketLike['onopen'] = null;
      onmessage: SocketLike['onmessage'] = null;
      onerror: SocketLike['onerror'] = null;
      onclose: SocketLike['onclose'] = null;
      constructor(url: string) {
        attempts.push(url);
        setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 5);
      }
      send(): void {}
      close(): void {}
    }
    const start = await alice.get('/v1/sync');
    const blocked = new RealtimeClient({
      baseUrl: server.url(),
      token: () => alice.token(),
      rest: alice,
      cursor: start.next_cursor,
      syncAfterFailures: 2,
      WebSocket: RefusedSocket,
      ...FAST,
    });
    open.push(blocked);
    const { created } = collect(blocked);
    void blocked.connect().catch(() => undefined);
    const sent = [];
    for (const text of ['one', 'two', 'three']) {
      sent.push(
        await bob.post('/v1/conversations/{conversation_id}/messages', {
          params: { path: { conversation_id: conversationId } },
          body: { text },
        }),
      );
    }
    await expect
      .poll(() => created(conversationId).length === 3, { message: 'the catch-up', timeout: 20_000 })
      .toBe(true);
    expect(created(conversationId).map((m) => m.id)).toEqual(sent.map((m) => m.id));
    expect(blocked.state).toBe('reconnecting');
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts[0]).toContain(`cursor=${encodeURIComponent(start.next_cursor)}`);
  });

  it('resets when the kept cursor cannot be resumed, and goes on from a fresh one', async () => {
    const { alice, bob, conversationId } = await aliceAndBob();
    const live = alice.realtime({ ...FAST, cursor: 'not-a-cursor-this-server-made' });
    open.push(live);
    const { created } = collect(live);
    let resets = 0;
    live.on('reset', () => resets++);
    await live.connect();
    expect(resets).toBe(1);
    const after = await bob.post('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: conversationId } },
      body: { text: 'after the reset' },
    });
    await expect
      .poll(() => created(conversationId).length === 1, {
        message: 'the message after the reset',
        timeout: 20_000,
      })
      .toBe(true);
    expect(created(conversationId).map((m) => m.id)).toEqual([after.id]);
  });

  it('stops for good when a fixed token is refused', async () => {
    const client = new ParleyClient({ baseUrl: server.url(), token: 'not-a-token' });
    const live = client.realtime(FAST);
    open.push(live);
    const closed: number[] = [];
    live.on('closed', ({ code }) => closed.push(code));
    const error = await live.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParleyError);
    expect(error).toMatchObject({ code: 'unauthorized' });
    expect(live.state).toBe('closed');
    expect(closed).toEqual([4401]);
    expect(() => live.send('019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83', { text: 'x' })).toThrow(ParleyError);
  });
});
