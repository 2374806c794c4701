import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { BusMessage } from '../src/modules/events/events.bus.ts';
import { createRedisBus, parseBusMessage } from '../src/realtime/bus.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { groupOfThree, connectReady } from './helpers/realtime.ts';
import { freePort, hasRedisServer, startRedis } from './helpers/redis.ts';

// What arrives on the bus channel is checked before any handler sees it: another version of Parley, or
// anything else publishing there, must not crash a process or misroute. A Redis of this file's own, so
// what it publishes reaches no other test's processes.

let redis: ChildProcess | null = null;
let raw: Redis | null = null;
let t: TestApp | null = null;
afterAll(async () => {
  raw?.disconnect();
  await t?.app.close();
  await t?.database.drop();
  redis?.kill('SIGKILL');
});

if (!hasRedisServer) console.log('skipped "the Redis bus": redis-server is not on the PATH');

describe.skipIf(!hasRedisServer)('the Redis bus', () => {
  it('drops and reports garbage and wrong-shaped messages; the good ones after them still arrive', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const errors: Error[] = [];
    const bus = createRedisBus(`redis://127.0.0.1:${port}`, (error) => errors.push(error));
    t = await buildTestApp(await createTestDatabase(), { bus });
    const base = await listenForSockets(t);
    const received: BusMessage[] = [];
    bus.subscribe((message) => received.push(message));

    const s = await groupOfThree(t);
    const bob = await connectReady(base, await s.token('bob'));
    await bus.ping();
    raw = new Redis(`redis://127.0.0.1:${port}`);
    // Each of these reached the hub as a BusMessage and threw inside ioredis's reply handler.
    const invalid = [
      'not json {',
      'null',
      '[]',
      JSON.stringify({ kind: 'credentials' }),
      JSON.stringify({ kind: 'presence_renewal', processId: 'p', users: 5 }),
      JSON.stringify({ kind: 'presence_renewal', processId: 'p', users: [[s.tenant.id]] }),
      JSON.stringify({ kind: 'typing', tenantId: s.tenant.id, conversationId: s.conversationId }),
      JSON.stringify({ kind: 'something_new', tenantId: s.tenant.id }),
    ];
    for (const payload of invalid) await raw.publish('parley:bus:v1', payload);
    const typing: BusMessage = {
      kind: 'typing',
      tenantId: s.tenant.id,
      conversationId: s.conversationId,
      userId: 'alice',
      isTyping: true,
    };
    await raw.publish('parley:bus:v1', JSON.stringify(typing));

    // Typing travels only on the bus (no poll makes up for it): its arrival shows the subscriber lives.
    const frame = await bob.waitFor((candidate) => candidate.event?.type === 'typing.started');
    expect(frame.event).toMatchObject({ conversation_id: s.conversationId, data: { user_id: 'alice' } });
    // Only valid messages reached the handlers (the app's own events and presence, and the typing).
    expect(received.filter((message) => message.kind === 'typing')).toEqual([typing]);
    for (const message of received) expect(parseBusMessage(JSON.stringify(message))).toEqual(message);
    // Reported once (at most one report every 10 s), naming the first reason and counting, no payload.
    expect(errors.map((error) => error.message)).toEqual([
      'dropped 1 invalid bus message(s); the last: not JSON, 10 characters',
    ]);

    // The process goes on serving: a send is delivered, and the bus still carries wake-ups.
    const sent = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${s.conversationId}/messages`,
      headers: { authorization: `Bearer ${s.tenant.apiKey.secret}`, 'x-parley-user': 'alice' },
      payload: { text: 'still here' },
    });
    expect(sent.statusCode, sent.body).toBe(201);
    await bob.waitFor((candidate) => candidate.event?.type === 'message.created');
    expect(received.some((message) => message.kind === 'events')).toBe(true);
    await bob.close();
  });
});
