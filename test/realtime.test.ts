import { describe, expect, it } from 'vitest';
import { actingAs } from './helpers/factories.ts';
import { useRealtimeApp, type GroupSetup } from './helpers/realtime.ts';
import { TestSocket } from './helpers/ws-client.ts';

// The socket: connecting and authenticating, what it refuses, and what the event log keeps of deleted content.

const rt = useRealtimeApp();
const { t, setup, connect, sendRest } = rt;
type Setup = GroupSetup;

describe('connecting', () => {
  it('authenticates with ?access_token= and sends ready with a cursor', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${rt.base()}/v1/ws?access_token=${await s.token('bob')}`);
    const ready = await socket.waitFor((frame) => frame.type === 'ready');
    expect(ready).toMatchObject({ type: 'ready', user_id: 'bob' });
    expect(typeof ready.cursor).toBe('string');
    await socket.close();
  });

  it('authenticates with a first auth frame, and refuses bad or missing credentials with 4401', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${rt.base()}/v1/ws`);
    socket.send({ type: 'auth', token: await s.token('bob') });
    await socket.waitFor((frame) => frame.type === 'ready');
    await socket.close();

    const forged = await TestSocket.open(`${rt.base()}/v1/ws?access_token=not.a.token`);
    expect(await forged.waitForClose()).toBe(4401);
    const backendKey = await TestSocket.open(`${rt.base()}/v1/ws?access_token=${s.tenant.apiKey.secret}`);
    expect(await backendKey.waitForClose()).toBe(4401);
    const silent = await TestSocket.open(`${rt.base()}/v1/ws`);
    expect(await silent.waitForClose(8000)).toBe(4401);
  }, 15_000);

  it('authenticates with Authorization: Bearer on the upgrade, as a non-browser client sends it', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${rt.base()}/v1/ws`, {
      authorization: `Bearer ${await s.token('bob')}`,
    });
    expect(await socket.waitFor((frame) => frame.type === 'ready')).toMatchObject({ user_id: 'bob' });
    socket.send({ type: 'auth', token: await s.token('bob'), ref: 'again' });
    expect(await socket.waitFor((frame) => frame.ref === 'again')).toMatchObject({ code: 'conflict' });
    await socket.close();
    const backendKey = await TestSocket.open(`${rt.base()}/v1/ws`, {
      authorization: `Bearer ${s.tenant.apiKey.secret}`,
    });
    expect(await backendKey.waitForClose()).toBe(4401);
    // Another scheme is a proxy's (a browser sends its Basic credentials along): ignored, not refused.
    const behindProxy = await TestSocket.open(`${rt.base()}/v1/ws?access_token=${await s.token('bob')}`, {
      authorization: 'Basic dXNlcjpwYXNz',
    });
    expect(await behindProxy.waitFor((frame) => frame.type === 'ready')).toMatchObject({ user_id: 'bob' });
    await behindProxy.close();
  });

  it('carries out frames sent before ready once it is, and none if it never comes', async () => {
    const s = await setup();
    // Sent before the auth frame: they wait for the session rather than being refused.
    const socket = await TestSocket.open(`${rt.base()}/v1/ws`);
    socket.send({ type: 'send', ref: 's1', conversation_id: s.conversationId, text: 'early one' });
    socket.send({ type: 'typing.start', ref: 't1', conversation_id: s.conversationId });
    socket.send({ type: 'send', ref: 's2', conversation_id: s.conversationId, text: 'early two' });
    socket.send({ type: 'auth', token: await s.token('bob') });
    const acks = await Promise.all(
      ['s1', 't1', 's2'].map((ref) => socket.waitFor((frame) => frame.ref === ref)),
    );
    expect(acks.map((frame) => frame.type)).toEqual(['ack', 'ack', 'ack']);
    const readyAt = socket.frames.findIndex((frame) => frame.type === 'ready');
    expect(readyAt).toBeGreaterThanOrEqual(0);
    expect(Math.min(...acks.map((frame) => socket.frames.indexOf(frame)))).toBeGreaterThan(readyAt);
    // Both stored, once each (frames of one socket run side by side: their seqs may come in either order).
    const seqs = [acks[0]?.message?.seq ?? 0, acks[2]?.message?.seq ?? 0].sort((a, b) => a - b);
    expect(seqs[1]).toBe((seqs[0] ?? 0) + 1);
    await socket.close();

    // A token that is refused: the socket closes with 4401 and what waited is not carried out.
    const refused = await TestSocket.open(`${rt.base()}/v1/ws`);
    refused.send({ type: 'send', ref: 'x', conversation_id: s.conversationId, text: 'never sent' });
    refused.send({ type: 'auth', token: 'not.a.token' });
    expect(await refused.waitForClose()).toBe(4401);
    const history = await t.app.inject({
      method: 'GET',
      url: `/v1/conversations/${s.conversationId}/messages`,
      headers: actingAs(s.tenant, 'alice'),
    });
    const texts = history.json<{ data: { text: string }[] }>().data.map((message) => message.text);
    expect(texts).toEqual(expect.arrayContaining(['early one', 'early two']));
    expect(texts).not.toContain('never sent');
  });

  it('lets at most 32 frames wait for ready: the next is refused with rate_limited', async () => {
    const s = await setup();
    const socket = await TestSocket.open(`${rt.base()}/v1/ws`);
    for (let i = 0; i <= 32; i += 1) {
      socket.send({ type: 'typing.start', ref: `f${i}`, conversation_id: s.conversationId });
    }
    expect(await socket.waitFor((frame) => frame.ref === 'f32')).toMatchObject({
      type: 'error',
      code: 'rate_limited',
    });
    socket.send({ type: 'auth', token: await s.token('bob') });
    await socket.waitFor((frame) => frame.ref === 'f31' && frame.type === 'ack');
    expect(socket.frames.filter((frame) => frame.type === 'ack')).toHaveLength(32);
    await socket.close();
  });

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
    // A read past any possible seq is refused as input, before the database sees it.
    socket.send({
      type: 'read',
      ref: 'r3',
      conversation_id: '01a20000-0000-7000-8000-000000000000',
      seq: 1e300,
    });
    expect(await socket.waitFor((frame) => frame.ref === 'r3')).toMatchObject({
      type: 'error',
      code: 'validation_failed',
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

describe('robustness', () => {
  it('answers any JSON that is not a frame (null, numbers, arrays) with an error, and stays up', async () => {
    const s = await setup();
    const anonymous = await TestSocket.open(`${rt.base()}/v1/ws`);
    anonymous.socket.send('null');
    await anonymous.waitFor((frame) => frame.type === 'error' && frame.code === 'validation_failed');
    const socket = await connect(await s.token('bob'));
    for (const payload of ['null', '42', '[1,2]', '"text"', 'true']) socket.socket.send(payload);
    socket.send({ type: 'ping', ref: 'alive' });
    await socket.waitFor((frame) => frame.ref === 'alive');
    expect(socket.frames.filter((frame) => frame.type === 'error')).toHaveLength(5);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await anonymous.close();
    await socket.close();
  });

  it('authenticates a socket once: a second token is refused and nothing is delivered twice', async () => {
    const s = await setup();
    const token = await s.token('carol');
    const socket = await TestSocket.open(`${rt.base()}/v1/ws`);
    socket.send({ type: 'auth', token, ref: 'a1' });
    socket.send({ type: 'auth', token, ref: 'a2' });
    await socket.waitFor((frame) => frame.type === 'error' && frame.code === 'conflict');
    await socket.waitFor((frame) => frame.type === 'ready');
    await sendRest(s, 'bob', 'once only');
    await socket.waitFor((frame) => frame.event?.data.text === 'once only');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(socket.frames.filter((frame) => frame.type === 'ready')).toHaveLength(1);
    expect(socket.events().filter((event) => event.data.text === 'once only')).toHaveLength(1);
    await socket.close();
  });

  it('closes a socket resuming from a cursor older than the retention with 4410', async () => {
    const s = await setup();
    const expired = Buffer.from(JSON.stringify({ prev: '1:1:', at: 0 })).toString('base64url');
    const socket = await TestSocket.open(
      `${rt.base()}/v1/ws?access_token=${await s.token('bob')}&cursor=${expired}`,
    );
    expect(await socket.waitForClose()).toBe(4410);
  });

  it('does not drop events for sockets that connect while messages flow', async () => {
    const s = await setup();
    const token = await s.token('carol');
    const flow = { isSending: true };
    const sending = (async () => {
      let index = 0;
      while (flow.isSending) await sendRest(s, 'bob', `flow ${index++}`);
    })();
    const sockets: { socket: TestSocket; start: string }[] = [];
    for (let index = 0; index < 8; index++) {
      const socket = await connect(token);
      sockets.push({ socket, start: socket.frames.find((frame) => frame.type === 'ready')?.cursor ?? '' });
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    flow.isSending = false;
    await sending;
    const last = await sendRest(s, 'bob', 'flow end');
    for (const { socket, start } of sockets) {
      await socket.waitFor((frame) => frame.event?.data.id === last.id, 10_000);
      const expected: string[] = [];
      let since = start;
      for (;;) {
        const page = (
          await t.app.inject({
            method: 'GET',
            url: `/v1/sync?since=${since}&limit=500`,
            headers: actingAs(s.tenant, 'carol'),
          })
        ).json<{ events: { type: string; seq?: number }[]; next_cursor: string; has_more: boolean }>();
        expected.push(...page.events.map((event) => `${event.type}:${event.seq ?? ''}`));
        since = page.next_cursor;
        if (!page.has_more) break;
      }
      const got = socket
        .events()
        .filter((event) => !event.type.startsWith('typing') && event.type !== 'presence.changed');
      expect(got.map((event) => `${event.type}:${event.seq ?? ''}`)).toEqual(expected);
      await socket.close();
    }
  }, 30_000);

  it('on resume, sends ready first, then the missed events, then live ones', async () => {
    const s = await setup();
    const token = await s.token('carol');
    const first = await connect(token);
    await sendRest(s, 'bob', 'seen');
    const seen = await first.waitFor((frame) => frame.event?.data.text === 'seen');
    await first.close();
    await sendRest(s, 'bob', 'missed');
    const back = await connect(token, seen.event?.cursor);
    await back.waitFor((frame) => frame.event?.data.text === 'missed');
    expect(back.frames[0]?.type).toBe('ready');
    await back.close();
  });

  it("GET /v1/sync from an event's cursor reads on to the present", async () => {
    const s = await setup();
    const socket = await connect(await s.token('carol'));
    await sendRest(s, 'bob', 'anchor');
    const anchor = await socket.waitFor((frame) => frame.event?.data.text === 'anchor');
    await socket.close();
    await sendRest(s, 'bob', 'after 1');
    await sendRest(s, 'bob', 'after 2');
    const page = (
      await t.app.inject({
        method: 'GET',
        url: `/v1/sync?since=${anchor.event?.cursor ?? ''}`,
        headers: actingAs(s.tenant, 'carol'),
      })
    ).json<{ events: { data: { text?: string } }[]; has_more: boolean }>();
    expect(page.events.map((event) => event.data.text).filter(Boolean)).toEqual(['after 1', 'after 2']);
    expect(page.has_more).toBe(false);
  });
});

describe('the event log forgets deleted content', () => {
  const fullHistory = (s: Setup, userId: string) =>
    t.app
      .inject({
        method: 'GET',
        url: `/v1/sync?since=${Buffer.from(JSON.stringify({ prev: '1:1:', at: Date.now() })).toString('base64url')}&limit=500`,
        headers: actingAs(s.tenant, userId),
      })
      .then(
        (response) =>
          response.json<{ events: { type: string; data: { id?: string; text?: string | null } }[] }>().events,
      );

  it('blanks a deleted message in every event that carried its text', async () => {
    const s = await setup();
    const message = await sendRest(s, 'bob', 'regrettable words');
    await t.app.inject({
      method: 'PATCH',
      url: `/v1/messages/${message.id}`,
      headers: actingAs(s.tenant, 'bob'),
      payload: { text: 'still regrettable' },
    });
    await t.app.inject({
      method: 'DELETE',
      url: `/v1/messages/${message.id}`,
      headers: actingAs(s.tenant, 'bob'),
    });
    const events = await fullHistory(s, 'carol');
    expect(JSON.stringify(events)).not.toContain('regrettable');
    expect(
      events.filter((event) => event.data.id === message.id).map((event) => [event.type, event.data.text]),
    ).toEqual([
      ['message.created', null],
      ['message.updated', null],
      ['message.deleted', null],
    ]);
  });

  it("blanks an erased user's messages in the log", async () => {
    const s = await setup();
    await sendRest(s, 'bob', 'personal detail of bob');
    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/bob',
      headers: { authorization: `Bearer ${s.tenant.apiKey.secret}` },
    });
    expect(erased.statusCode).toBe(204);
    expect(JSON.stringify(await fullHistory(s, 'carol'))).not.toContain('personal detail');
  });
});
