import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import {
  actingAs,
  createTenant,
  expectProblem,
  mintUserToken,
  putUser,
  type TestTenant,
} from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

const t = useTestApp();
let base = '';

beforeAll(async () => {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('not listening');
  base = `ws://127.0.0.1:${address.port}`;
});

interface Setup {
  tenant: TestTenant;
  conversationId: string;
  token: (userId: string) => Promise<string>;
}

/** A tenant with alice (OWNER), bob and carol in one group. */
async function setup(): Promise<Setup> {
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

/** Connects and waits for `ready`. */
async function connect(token: string, cursor?: string): Promise<TestSocket> {
  const query = new URLSearchParams({ access_token: token, ...(cursor === undefined ? {} : { cursor }) });
  const socket = await TestSocket.open(`${base}/v1/ws?${query.toString()}`);
  await socket.waitFor((frame) => frame.type === 'ready');
  return socket;
}

const sendRest = async (s: Setup, userId: string, text: string, extra: object = {}) => {
  const response = await t.app.inject({
    method: 'POST',
    url: `/v1/conversations/${s.conversationId}/messages`,
    headers: actingAs(s.tenant, userId),
    payload: { text, ...extra },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string; seq: number }>();
};

describe('connecting', () => {
  it('authenticates with ?access_token= and sends ready with a cursor', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${base}/v1/ws?access_token=${await s.token('bob')}`);
    const ready = await socket.waitFor((frame) => frame.type === 'ready');
    expect(ready).toMatchObject({ type: 'ready', user_id: 'bob' });
    expect(typeof ready.cursor).toBe('string');
    await socket.close();
  });

  it('authenticates with a first auth frame, and refuses bad or missing credentials with 4401', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${base}/v1/ws`);
    socket.send({ type: 'auth', token: await s.token('bob') });
    await socket.waitFor((frame) => frame.type === 'ready');
    await socket.close();

    const forged = await TestSocket.open(`${base}/v1/ws?access_token=not.a.token`);
    expect(await forged.waitForClose()).toBe(4401);
    const backendKey = await TestSocket.open(`${base}/v1/ws?access_token=${s.tenant.apiKey.secret}`);
    expect(await backendKey.waitForClose()).toBe(4401);
    const silent = await TestSocket.open(`${base}/v1/ws`);
    expect(await silent.waitForClose(8000)).toBe(4401);
  }, 15_000);

  it('answers bad frames with an error frame and keeps the socket open; closes on non-JSON and oversize', async () => {
    const s = await setup();
    const socket = await connect(await s.token('bob'));
    socket.send({ type: 'send', ref: 'r1', conversation_id: 'nope', text: 'x' });
    expect(await socket.waitFor((frame) => frame.ref === 'r1')).toMatchObject({
      type: 'error',
      code: 'validation_failed',
    });
    socket.send({
      type: 'send',
      ref: 'r2',
      conversation_id: '01a20000-0000-7000-8000-000000000000',
      text: 'x',
    });
    expect(await socket.waitFor((frame) => frame.ref === 'r2')).toMatchObject({
      type: 'error',
      code: 'not_found',
    });
    socket.send({ type: 'ping', ref: 'p' });
    expect(await socket.waitFor((frame) => frame.ref === 'p')).toMatchObject({ type: 'pong' });
    socket.socket.send('{not json');
    expect(await socket.waitForClose()).toBe(1007);

    const big = await connect(await s.token('bob'));
    big.send({ type: 'ping', ref: 'x'.repeat(70_000) });
    expect(await big.waitForClose()).toBe(1009);
  });
});

describe('delivery', () => {
  it("delivers committed changes to every member's sockets, the sender's other devices included", async () => {
    const s = await setup();
    const bobPhone = await connect(await s.token('bob'));
    const bobLaptop = await connect(await s.token('bob'));
    const carol = await connect(await s.token('carol'));
    const dave = await connect(await s.token('dave'));

    bobPhone.send({
      type: 'send',
      ref: 's1',
      conversation_id: s.conversationId,
      text: 'hello @carol',
      client_msg_id: 'c1',
    });
    const ack = await bobPhone.waitFor((frame) => frame.ref === 's1');
    expect(ack).toMatchObject({ type: 'ack', message: { seq: 1 } });
    for (const socket of [bobLaptop, carol]) {
      const event = (await socket.waitFor((frame) => frame.event?.type === 'message.created')).event;
      expect(event).toMatchObject({
        conversation_id: s.conversationId,
        seq: 1,
        data: { text: 'hello @carol', mentions: ['carol'] },
      });
      expect(typeof event?.cursor).toBe('string');
    }
    // The same client_msg_id over the socket returns the original message.
    bobPhone.send({
      type: 'send',
      ref: 's2',
      conversation_id: s.conversationId,
      text: 'hello @carol',
      client_msg_id: 'c1',
    });
    expect((await bobPhone.waitFor((frame) => frame.ref === 's2')).message?.id).toBe(ack.message?.id);

    const edited = await t.app.inject({
      method: 'PATCH',
      url: `/v1/messages/${ack.message?.id ?? ''}`,
      headers: actingAs(s.tenant, 'bob'),
      payload: { text: 'hello again' },
    });
    expect(edited.statusCode).toBe(200);
    await carol.waitFor((frame) => frame.event?.type === 'message.updated');
    await t.app.inject({
      method: 'PUT',
      url: `/v1/messages/${ack.message?.id ?? ''}/reactions/${encodeURIComponent('🎉')}`,
      headers: actingAs(s.tenant, 'carol'),
    });
    expect(
      (await bobLaptop.waitFor((frame) => frame.event?.type === 'reaction.added')).event?.data,
    ).toMatchObject({
      emoji: '🎉',
      user_id: 'carol',
    });
    carol.send({ type: 'read', ref: 'rd', conversation_id: s.conversationId });
    await carol.waitFor((frame) => frame.ref === 'rd' && frame.type === 'ack');
    // Read state is the reader's own: it reaches carol's sockets, not bob's.
    await carol.waitFor((frame) => frame.event?.type === 'read.updated');
    // dave is not a member: he receives none of it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dave.events()).toEqual([]);
    // bob's devices see bob's own read state (sending marked the conversation read), never carol's.
    const bobReads = bobLaptop.events().filter((event) => event.type === 'read.updated');
    expect(bobReads.map((event) => event.data.user_id)).toEqual(bobReads.map(() => 'bob'));
    for (const socket of [bobPhone, bobLaptop, carol, dave]) await socket.close();
  });

  it('applies membership changes live', async () => {
    const s = await setup();
    const dave = await connect(await s.token('dave'));
    const carol = await connect(await s.token('carol'));
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${s.conversationId}/members`,
      headers: actingAs(s.tenant, 'alice'),
      payload: { user_ids: ['dave'] },
    });
    await dave.waitFor((frame) => frame.event?.type === 'member.added');
    await sendRest(s, 'alice', 'welcome dave');
    await dave.waitFor((frame) => frame.event?.type === 'message.created');

    await t.app.inject({
      method: 'DELETE',
      url: `/v1/conversations/${s.conversationId}/members/carol`,
      headers: actingAs(s.tenant, 'alice'),
    });
    await carol.waitFor((frame) => frame.event?.type === 'member.removed');
    const before = carol.frames.length;
    await sendRest(s, 'alice', 'carol is gone');
    await dave.waitFor((frame) => frame.event?.data.text === 'carol is gone');
    expect(carol.frames.slice(before).filter((frame) => frame.event?.type === 'message.created')).toEqual([]);
    await dave.close();
    await carol.close();
  });

  it('announces typing to the other members, and its end', async () => {
    const s = await setup();
    const bob = await connect(await s.token('bob'));
    const carol = await connect(await s.token('carol'));
    bob.send({ type: 'typing.start', ref: 't1', conversation_id: s.conversationId });
    expect((await carol.waitFor((frame) => frame.event?.type === 'typing.started')).event?.data).toEqual({
      user_id: 'bob',
    });
    bob.send({ type: 'typing.stop', conversation_id: s.conversationId });
    await carol.waitFor((frame) => frame.event?.type === 'typing.stopped');
    expect(bob.events().filter((event) => event.type.startsWith('typing'))).toEqual([]);
    await bob.close();
    await carol.close();
  });
});

describe('no gaps after a reconnect', () => {
  it('replays what a socket missed, exactly once, when it reconnects with its last cursor', async () => {
    const s = await setup();
    const carolToken = await s.token('carol');
    const carol = await connect(carolToken);
    await sendRest(s, 'bob', 'one');
    const first = await carol.waitFor((frame) => frame.event?.data.text === 'one');
    await carol.close();
    for (const text of ['two', 'three', 'four']) await sendRest(s, 'bob', text);

    const back = await connect(carolToken, first.event?.cursor);
    await sendRest(s, 'bob', 'five');
    await back.waitFor((frame) => frame.event?.data.text === 'five');
    const texts = back
      .events()
      .filter((event) => event.type === 'message.created')
      .map((event) => event.data.text);
    expect(texts).toEqual(['two', 'three', 'four', 'five']);
    await back.close();
  });

  it('GET /v1/sync pages every missed event in order, and refuses expired or forged cursors', async () => {
    const s = await setup();
    const headers = actingAs(s.tenant, 'carol');
    const start = (await t.app.inject({ method: 'GET', url: '/v1/sync', headers })).json<{
      next_cursor: string;
    }>();
    for (const text of ['a', 'b', 'c', 'd', 'e']) await sendRest(s, 'bob', text);
    const seen: string[] = [];
    let cursor = start.next_cursor;
    let pages = 0;
    for (;;) {
      const page = (
        await t.app.inject({ method: 'GET', url: `/v1/sync?since=${cursor}&limit=2`, headers })
      ).json<{
        events: { type: string; data: { text?: string } }[];
        next_cursor: string;
        has_more: boolean;
      }>();
      pages++;
      seen.push(
        ...page.events
          .filter((event) => event.type === 'message.created')
          .map((event) => event.data.text ?? ''),
      );
      cursor = page.next_cursor;
      if (!page.has_more) break;
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(pages).toBe(3);
    // Nothing new: the same cursor gives nothing, and keeps giving nothing.
    const again = (await t.app.inject({ method: 'GET', url: `/v1/sync?since=${cursor}`, headers })).json<{
      events: unknown[];
    }>();
    expect(again.events).toEqual([]);

    const expired = Buffer.from(JSON.stringify({ prev: '1:1:', at: 0 })).toString('base64url');
    expectProblem(
      await t.app.inject({ method: 'GET', url: `/v1/sync?since=${expired}`, headers }),
      410,
      'cursor_expired',
    );
    expectProblem(
      await t.app.inject({ method: 'GET', url: '/v1/sync?since=garbage', headers }),
      400,
      'validation_failed',
    );
  });

  it('with clients dropping and reconnecting while others write, every client ends with exactly the history', async () => {
    const s = await setup();
    const writers = ['alice', 'bob'];
    const readers = ['carol'];
    const tokens = new Map<string, string>();
    for (const userId of [...writers, ...readers]) tokens.set(userId, await s.token(userId));
    const received = new Map<string, { id: string; type: string }[]>();
    let cursor: string | undefined;
    let socket = await connect(tokens.get('carol') ?? '');
    const counts = { attempted: 0, acknowledged: 0 };
    const ids: string[] = [];
    const record = () => {
      for (const event of socket.events()) {
        const list = received.get('carol') ?? [];
        list.push({
          id: `${event.type}:${JSON.stringify(event.data.id ?? event.data.message_id ?? null)}:${event.cursor ?? ''}`,
          type: event.type,
        });
        received.set('carol', list);
        cursor = event.cursor ?? cursor;
      }
    };
    for (let round = 0; round < 12; round++) {
      const writer = writers[round % 2] ?? 'alice';
      counts.attempted++;
      const message = await sendRest(s, writer, `round ${round}`);
      counts.acknowledged++;
      ids.push(message.id);
      if (round % 3 === 2) {
        await t.app.inject({
          method: 'PATCH',
          url: `/v1/messages/${message.id}`,
          headers: actingAs(s.tenant, writer),
          payload: { text: `edited ${round}` },
        });
      }
      if (round % 4 === 3) {
        await t.app.inject({
          method: 'DELETE',
          url: `/v1/messages/${ids[round - 1] ?? ''}`,
          headers: actingAs(s.tenant, writers[(round - 1) % 2] ?? 'alice'),
        });
      }
      if (round % 5 === 4) {
        // Drop: take what arrived, close, write while away, come back with the last cursor.
        await new Promise((resolve) => setTimeout(resolve, 100));
        record();
        await socket.close();
        await sendRest(s, 'bob', `while away ${round}`);
        socket = await connect(tokens.get('carol') ?? '', cursor);
      }
    }
    const last = await sendRest(s, 'alice', 'the end');
    await socket.waitFor(
      (frame) => frame.event?.type === 'message.created' && frame.event.data.id === last.id,
    );
    record();

    // The reference: every event carol should have, read fresh from the start of time.
    const everything: { type: string; data: { id?: string; message_id?: string } }[] = [];
    const headers = actingAs(s.tenant, 'carol');
    let since = Buffer.from(JSON.stringify({ prev: '1:1:', at: Date.now() })).toString('base64url');
    for (;;) {
      const page = (
        await t.app.inject({ method: 'GET', url: `/v1/sync?since=${since}&limit=100`, headers })
      ).json<{
        events: { type: string; data: { id?: string; message_id?: string } }[];
        next_cursor: string;
        has_more: boolean;
      }>();
      everything.push(...page.events);
      since = page.next_cursor;
      if (!page.has_more) break;
    }
    const got = (received.get('carol') ?? []).map((event) => event.type);
    const messageEvents = (list: string[]) => list.filter((type) => type.startsWith('message.'));
    const expected = everything.map((event) => event.type);
    const duplicates = got.length - new Set((received.get('carol') ?? []).map((event) => event.id)).size;
    console.log(
      `reconnect test: attempted ${counts.attempted}, acknowledged ${counts.acknowledged}, stored events ${expected.length}, delivered ${got.length}, duplicates ${duplicates}`,
    );
    expect(duplicates).toBe(0);
    expect(messageEvents(got)).toEqual(
      messageEvents(expected).slice(messageEvents(expected).length - messageEvents(got).length),
    );
    expect(messageEvents(got).length).toBe(messageEvents(expected).length);
    await socket.close();
  }, 60_000);
});
