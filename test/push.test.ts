import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf, type Tx } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { newId } from '../src/ids.ts';
import { scheduleEventRetention } from '../src/jobs/retention.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  asUser,
  bearer,
  createTenantWithUsers,
  mintUserToken,
  sendText,
  type TestTenant,
} from './helpers/factories.ts';
import { startPushReceiver, type PushReceiver, type TestSubscriber } from './helpers/push-receiver.ts';
import { connectReady } from './helpers/realtime.ts';
import { uploadFile } from './helpers/uploads.ts';
import {
  startWebhookReceiver,
  type ReceivedWebhook,
  type WebhookReceiver,
} from './helpers/webhook-receiver.ts';

/** Long enough for a push that should not come to have come: its siblings of the same step already did. */
const SETTLE_MS = 400;
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/**
 * Push to offline users (docs/PUSH.md) through real HTTP: a push service on loopback that decrypts what it
 * gets (RFC 8291) as a browser would, sockets that make a user online, and a webhook endpoint that
 * receives `notification.requested`.
 */
describe('push to offline users', () => {
  let t: TestApp;
  let base: string;
  let tenant: TestTenant;
  let receiver: PushReceiver;
  let groupId: string;
  const subscribers: Record<string, TestSubscriber> = {};

  const subscribe = async (userId: string, subscriber: TestSubscriber) => {
    const response = await asUser(t, tenant, userId).post('/v1/me/push-subscriptions', {
      endpoint: subscriber.endpoint,
      keys: subscriber.keys,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ id: string }>().id;
  };
  /** The pushes a user got since `since` (a count of theirs before), opened. */
  const pushesOf = (userId: string, since = 0) => {
    const subscriber = subscribers[userId];
    if (!subscriber) throw new Error(`no subscriber ${userId}`);
    return subscriber.received().slice(since);
  };
  const counts = () =>
    Object.fromEntries(Object.entries(subscribers).map(([userId, s]) => [userId, s.received().length]));

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200, pushRetryScheduleMs: [20, 20] },
    });
    base = await listenForSockets(t);
    receiver = await startPushReceiver();
    tenant = await createTenantWithUsers(t, 'ann', 'bob', 'cat', 'dan');
    const group = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      name: 'team',
      members: ['bob', 'cat'],
    });
    expect(group.statusCode, group.body).toBe(201);
    groupId = group.json<{ id: string }>().id;
    for (const userId of ['ann', 'bob', 'cat']) {
      subscribers[userId] = receiver.subscriber();
      await subscribe(userId, subscribers[userId]);
    }
  });
  afterAll(async () => {
    await t.app.close();
    await receiver.close();
    await t.database.drop();
  });

  it('pushes a group message to the offline members, encrypted, signed, collapsed by conversation', async () => {
    const before = counts();
    const sent = await sendText(t, tenant, 'ann', groupId, 'lunch at noon? @bob');
    await receiver.waitFor(
      () => pushesOf('bob', before.bob).length === 1 && pushesOf('cat', before.cat).length === 1,
    );
    const key = (await asUser(t, tenant, 'bob').get('/v1/push/vapid-public-key')).json<{
      public_key: string;
    }>().public_key;
    for (const userId of ['bob', 'cat']) {
      const [push] = pushesOf(userId, before[userId]);
      if (!push) throw new Error('no push');
      const subscriber = subscribers[userId];
      if (!subscriber) throw new Error('no subscriber');
      expect(subscriber.open(push)).toEqual({
        type: 'message.created',
        conversation_id: groupId,
        message_id: sent.id,
        sender_id: 'ann',
        preview: 'lunch at noon? @bob',
      });
      expect(push.headers['content-encoding']).toBe('aes128gcm');
      expect(push.headers.topic).toBe(groupId.replaceAll('-', ''));
      expect(Number(push.headers.ttl)).toBeGreaterThan(0);
      expect(push.headers.authorization).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=/);
      expect(push.headers.authorization).toContain(`k=${key}`);
    }
    await settle();
    // The sender hears nothing of their own message.
    expect(pushesOf('ann', before.ann)).toEqual([]);
  });

  it('previews a message of files alone by their names', async () => {
    const before = counts();
    const file = await uploadFile(t, tenant, 'ann', 'menu.pdf', Buffer.from('%PDF-1.7\n'));
    expect(file.statusCode, file.body).toBe(201);
    const sent = await asUser(t, tenant, 'ann').post(`/v1/conversations/${groupId}/messages`, {
      attachment_ids: [file.json<{ id: string }>().id],
    });
    expect(sent.statusCode, sent.body).toBe(201);
    await receiver.waitFor(() => pushesOf('bob', before.bob).length === 1);
    const [push] = pushesOf('bob', before.bob);
    if (!push) throw new Error('no push');
    expect(subscribers.bob?.open(push)).toMatchObject({ preview: '📎 menu.pdf' });
  });

  it('does not push to a member with an open socket', async () => {
    const socket = await connectReady(base, await mintUserToken(t, tenant, 'bob'));
    try {
      const before = counts();
      await sendText(t, tenant, 'ann', groupId, 'bob is here');
      await receiver.waitFor(() => pushesOf('cat', before.cat).length === 1);
      await settle();
      expect(pushesOf('bob', before.bob)).toEqual([]);
    } finally {
      await socket.close();
    }
    // Gone offline (once the server has seen the socket close), bob hears of the next one.
    await settle();
    const before = counts();
    await sendText(t, tenant, 'ann', groupId, 'bob left');
    await receiver.waitFor(() => pushesOf('bob', before.bob).length === 1);
  });

  it('does not push to a member who muted the conversation', async () => {
    const muted = await asUser(t, tenant, 'cat').patch(`/v1/conversations/${groupId}/settings`, {
      muted_until: '2999-01-01T00:00:00.000Z',
    });
    expect(muted.statusCode, muted.body).toBe(200);
    const before = counts();
    await sendText(t, tenant, 'ann', groupId, 'cat muted us');
    await receiver.waitFor(() => pushesOf('bob', before.bob).length === 1);
    await settle();
    expect(pushesOf('cat', before.cat)).toEqual([]);
    await asUser(t, tenant, 'cat').patch(`/v1/conversations/${groupId}/settings`, { muted_until: null });
  });

  it('pushes a channel message only to the members it mentions', async () => {
    const channel = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'channel',
      name: 'news',
    });
    const channelId = channel.json<{ id: string }>().id;
    for (const userId of ['bob', 'cat']) {
      expect((await asUser(t, tenant, userId).post(`/v1/conversations/${channelId}/join`)).statusCode).toBe(
        200,
      );
    }
    const before = counts();
    await sendText(t, tenant, 'ann', channelId, 'news for everyone');
    const mention = await sendText(t, tenant, 'ann', channelId, 'and a question for @cat');
    await receiver.waitFor(() => pushesOf('cat', before.cat).length === 1);
    const [push] = pushesOf('cat', before.cat);
    if (!push || !subscribers.cat) throw new Error('no push');
    expect(subscribers.cat.open(push)).toMatchObject({ message_id: mention.id, conversation_id: channelId });
    await settle();
    expect(pushesOf('bob', before.bob)).toEqual([]);
  });

  it('leaves the preview out when the tenant turns previews off', async () => {
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { push_previews: false },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ push_previews: false });
    try {
      const before = counts();
      const sent = await sendText(t, tenant, 'ann', groupId, 'a secret plan');
      await receiver.waitFor(() => pushesOf('bob', before.bob).length === 1);
      const [push] = pushesOf('bob', before.bob);
      if (!push || !subscribers.bob) throw new Error('no push');
      expect(subscribers.bob.open(push)).toEqual({
        type: 'message.created',
        conversation_id: groupId,
        message_id: sent.id,
        sender_id: 'ann',
      });
    } finally {
      await t.app.inject({
        method: 'PATCH',
        url: `/v1/admin/tenants/${tenant.id}`,
        headers: bearer(t.adminToken),
        payload: { push_previews: true },
      });
    }
  });

  it('removes a subscription the push service answers 410 for', async () => {
    const gone = receiver.subscriber();
    const id = await subscribe('dan', gone);
    const added = await asUser(t, tenant, 'ann').post(`/v1/conversations/${groupId}/members`, {
      user_ids: ['dan'],
    });
    expect(added.statusCode, added.body).toBeLessThan(300);
    const goneAt = gone.endpoint.slice(receiver.url.length);
    receiver.answer = (push) => (push.path === goneAt ? 410 : 201);
    await sendText(t, tenant, 'ann', groupId, 'dan, are you there?');
    await receiver.waitFor(() => gone.received().length === 1);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listed = await asUser(t, tenant, 'dan').get('/v1/me/push-subscriptions');
      const ids = listed.json<{ data: { id: string }[] }>().data.map((row) => row.id);
      if (!ids.includes(id)) break;
      if (Date.now() > deadline) throw new Error('the subscription was not removed');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    receiver.answer = () => 201;
    // Nothing more goes to it.
    const before = counts();
    await sendText(t, tenant, 'ann', groupId, 'dan?');
    await receiver.waitFor(() => pushesOf('bob', before.bob).length === 1);
    await settle();
    expect(gone.received()).toHaveLength(1);
  });

  it('retries a failing push service, then gives up and counts it', async () => {
    const metric = async (line: RegExp) => {
      const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      const match = text.split('\n').find((row) => line.test(row));
      return match === undefined ? 0 : Number(match.split(' ').at(-1));
    };
    const failedBefore = await metric(/^parley_push_attempts_total\{outcome="failed"\}/);
    const failing = receiver.subscriber();
    const path = failing.endpoint.slice(receiver.url.length);
    receiver.answer = (push) => (push.path === path ? 503 : 201);
    try {
      const other = await createTenantWithUsers(t, 'eve', 'fay');
      const response = await asUser(t, other, 'fay').post('/v1/me/push-subscriptions', {
        endpoint: failing.endpoint,
        keys: failing.keys,
      });
      expect(response.statusCode, response.body).toBe(201);
      const direct = await asUser(t, other, 'eve').post('/v1/direct-messages', { to: 'fay', text: 'hi fay' });
      expect(direct.statusCode, direct.body).toBe(201);
      // The first attempt and two retries (the test's schedule), then no more.
      await receiver.waitFor(() => failing.received().length === 3);
      const deadline = Date.now() + 10_000;
      while ((await metric(/^parley_push_attempts_total\{outcome="failed"\}/)) !== failedBefore + 1) {
        if (Date.now() > deadline) throw new Error('the push was never given up on');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await metric(/^parley_push_attempts_total\{outcome="retrying"\}/)).toBeGreaterThanOrEqual(2);
      expect(await metric(/^parley_background_work_items\{kind="push",state="failed"\}/)).toBe(1);
      await settle();
      expect(failing.received()).toHaveLength(3);
    } finally {
      receiver.answer = () => 201;
    }
  });
});

describe("a push service's other 4xx answers", () => {
  let t: TestApp;
  let receiver: PushReceiver;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      // Retries come at once: one that should not happen would be seen within the settle time.
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200, pushRetryScheduleMs: [20, 20, 20] },
    });
    receiver = await startPushReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await receiver.close();
    await t.database.drop();
  });

  it.each([400, 413])(
    'fail the push at once on %i, with no retry, and keep the subscription for the next message',
    async (status) => {
      const tenant = await createTenantWithUsers(t, 'ann', 'bob');
      const subscriber = receiver.subscriber();
      const path = subscriber.endpoint.slice(receiver.url.length);
      receiver.answer = (push) => (push.path === path ? status : 201);
      try {
        const subscribed = await asUser(t, tenant, 'bob').post('/v1/me/push-subscriptions', {
          endpoint: subscriber.endpoint,
          keys: subscriber.keys,
        });
        expect(subscribed.statusCode, subscribed.body).toBe(201);
        const subscriptionId = subscribed.json<{ id: string }>().id;
        const first = await asUser(t, tenant, 'ann').post('/v1/direct-messages', { to: 'bob', text: 'one' });
        expect(first.statusCode, first.body).toBe(201);
        await receiver.waitFor(() => subscriber.received().length === 1);
        const pushes = () =>
          inTenant(t.database.db.orm, tenant.id, async (scope) =>
            rowsOf<{ status: string; attempts: number; last_status_code: number; last_error: string }>(
              await scope.tx.execute(
                sql`SELECT status, attempts, last_status_code, last_error FROM push_deliveries`,
              ),
            ),
          );
        const deadline = Date.now() + 10_000;
        while ((await pushes())[0]?.status !== 'failed') {
          if (Date.now() > deadline)
            throw new Error(`the push was not failed: ${JSON.stringify(await pushes())}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(await pushes()).toEqual([
          { status: 'failed', attempts: 1, last_status_code: status, last_error: `answered ${status}` },
        ]);
        await settle();
        expect(subscriber.received()).toHaveLength(1);

        // The subscription is kept, and the next message is pushed to it.
        const listed = await asUser(t, tenant, 'bob').get('/v1/me/push-subscriptions');
        expect(listed.json<{ data: { id: string }[] }>().data.map((row) => row.id)).toEqual([subscriptionId]);
        receiver.answer = () => 201;
        const second = await asUser(t, tenant, 'ann').post('/v1/direct-messages', { to: 'bob', text: 'two' });
        await receiver.waitFor(() => subscriber.received().length === 2);
        const [, push] = subscriber.received();
        if (push === undefined) throw new Error('no second push');
        expect(subscriber.open(push)).toMatchObject({ message_id: second.json<{ id: string }>().id });
      } finally {
        receiver.answer = () => 201;
      }
    },
  );
});

describe('retention of pushes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase());
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
  });

  /** Pushes of one subscription of the tenant's `ann`, made `ageDays` ago; `label` is kept in last_error. */
  const seed = (tenant: TestTenant, rows: { label: string; status: string; ageDays: number }[]) =>
    inTenant(t.database.db.orm, tenant.id, async (scope) => {
      const subscriptionId = newId();
      const keys = { p256dh: 'B'.repeat(87), auth: 'A'.repeat(22) };
      await scope.tx.execute(sql`
        INSERT INTO push_subscriptions (tenant_id, id, user_id, endpoint, p256dh, auth)
        VALUES (${tenant.id}, ${subscriptionId}, 'ann', ${`https://8.8.8.8/push/${subscriptionId}`},
                ${keys.p256dh}, ${keys.auth})`);
      for (const row of rows) {
        const created = new Date(Date.now() - row.ageDays * 86_400_000);
        // A pending one waits for a retry far ahead: the sender leaves it alone.
        const next = row.status === 'pending' ? new Date(Date.now() + 86_400_000) : null;
        await scope.tx.execute(sql`
          INSERT INTO push_deliveries (tenant_id, id, subscription_id, conversation_id, event_id, status,
                                       attempts, next_attempt_at, last_error, created_at)
          VALUES (${tenant.id}, ${newId()}, ${subscriptionId}, ${newId()}, 1, ${row.status}, 1,
                  ${next?.toISOString() ?? null}, ${row.label}, ${created.toISOString()})`);
      }
    });
  const labelsOf = (tenant: TestTenant) =>
    inTenant(t.database.db.orm, tenant.id, async (scope) =>
      rowsOf<{ last_error: string }>(
        await scope.tx.execute(sql`SELECT last_error FROM push_deliveries ORDER BY last_error`),
      ).map((row) => row.last_error),
    );

  it('purges failed pushes older than the retention, of every tenant, and keeps recent and pending ones', async () => {
    const rows = [
      { label: 'failed 31 days ago', status: 'failed', ageDays: 31 },
      { label: 'failed 29 days ago', status: 'failed', ageDays: 29 },
      { label: 'pending for 40 days', status: 'pending', ageDays: 40 },
      { label: 'pending since now', status: 'pending', ageDays: 0 },
    ];
    const one = await createTenantWithUsers(t, 'ann');
    const two = await createTenantWithUsers(t, 'ann');
    await seed(one, rows);
    await seed(two, rows);

    // The retention job as the server schedules it (src/jobs/retention.ts): its first run, 30 s after start.
    const lines: { msg?: string; purged?: number }[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'] });
    try {
      const stop = scheduleEventRetention(t.database.db.orm, 30, log);
      vi.advanceTimersByTime(30_000);
      stop();
    } finally {
      vi.useRealTimers();
    }
    const deadline = Date.now() + 10_000;
    while (!lines.some((line) => line.msg === 'purged failed pushes')) {
      if (Date.now() > deadline) throw new Error(`no purge was logged: ${JSON.stringify(lines)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(lines.find((line) => line.msg === 'purged failed pushes')?.purged).toBe(2);
    for (const tenant of [one, two]) {
      expect(await labelsOf(tenant)).toEqual([
        'failed 29 days ago',
        'pending for 40 days',
        'pending since now',
      ]);
    }
  });
});

describe('presence on another process', () => {
  // Two apps on one database and one bus: two processes of one deployment (with Redis, in production).
  let reader: TestApp;
  let other: TestApp;
  let receiver: PushReceiver;

  beforeAll(async () => {
    const database = await createTestDatabase();
    const bus = createLocalBus();
    reader = await buildTestApp(database, {
      bus,
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200 },
    });
    // Never sweeps, and follows no tenant of its own: the first app alone reads the log for push.
    other = await buildTestApp(database, {
      bus,
      adminToken: reader.adminToken,
      serverKey: reader.serverKey,
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 3_600_000 },
    });
    receiver = await startPushReceiver();
  });
  afterAll(async () => {
    await other.app.close();
    await reader.app.close();
    await receiver.close();
    await reader.database.drop();
  });

  it('does not push to a user whose socket is on another process, as that process announced it', async () => {
    const tenant = await createTenantWithUsers(reader, 'ann', 'bob', 'cat');
    const group = await asUser(reader, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      members: ['bob', 'cat'],
    });
    const groupId = group.json<{ id: string }>().id;
    const bob = receiver.subscriber();
    const cat = receiver.subscriber();
    for (const [userId, subscriber] of [
      ['bob', bob],
      ['cat', cat],
    ] as const) {
      const response = await asUser(reader, tenant, userId).post('/v1/me/push-subscriptions', {
        endpoint: subscriber.endpoint,
        keys: subscriber.keys,
      });
      expect(response.statusCode, response.body).toBe(201);
    }
    const socket = await connectReady(
      await listenForSockets(other),
      await mintUserToken(reader, tenant, 'bob'),
    );
    try {
      await sendText(reader, tenant, 'ann', groupId, 'who is around?');
      await receiver.waitFor(() => cat.received().length === 1);
      await settle();
      expect(bob.received()).toEqual([]);
    } finally {
      await socket.close();
    }
  });
});

describe('pushes waiting for a retry', () => {
  let t: TestApp;
  let receiver: PushReceiver;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      // A retry far away: a failed push waits, pending, for the rest of the test.
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200, pushRetryScheduleMs: [600_000] },
    });
    receiver = await startPushReceiver();
    receiver.answer = () => 503;
  });
  afterAll(async () => {
    await t.app.close();
    await receiver.close();
    await t.database.drop();
  });

  it('are replaced by a newer push of their conversation: only the newest waits', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const subscriber = receiver.subscriber();
    const subscribed = await asUser(t, tenant, 'bob').post('/v1/me/push-subscriptions', {
      endpoint: subscriber.endpoint,
      keys: subscriber.keys,
    });
    expect(subscribed.statusCode, subscribed.body).toBe(201);
    const create = async () =>
      (await asUser(t, tenant, 'ann').post('/v1/conversations', { type: 'group', members: ['bob'] })).json<{
        id: string;
      }>().id;
    const first = await create();
    const second = await create();
    // Each push fails once and waits for its retry, until the next of its conversation replaces it.
    for (const text of ['one', 'two', 'three']) {
      await sendText(t, tenant, 'ann', first, text);
      const expected = subscriber.received().length + 1;
      await receiver.waitFor(() => subscriber.received().length === expected);
    }
    const last = await sendText(t, tenant, 'ann', second, 'elsewhere');
    await receiver.waitFor(() => subscriber.received().length === 4);
    const pending = await inTenant(t.database.db.orm, tenant.id, async (scope) =>
      rowsOf<{ conversation_id: string; data: { id: string; text: string } }>(
        await scope.tx.execute(sql`
          SELECT p.conversation_id, e.data FROM push_deliveries p
          JOIN events e ON e.tenant_id = p.tenant_id AND e.id = p.event_id
          WHERE p.status = 'pending' ORDER BY e.id`),
      ),
    );
    expect(pending.map((row) => [row.conversation_id, row.data.text])).toEqual([
      [first, 'three'],
      [second, 'elsewhere'],
    ]);
    expect(pending[1]?.data.id).toBe(last.id);
    // Every attempt so far carried a different message: none was sent twice.
    const sent = subscriber.received().map((push) => subscriber.open(push).message_id);
    expect(new Set(sent).size).toBe(4);
  });
});

describe('notification.requested', () => {
  let t: TestApp;
  let hooks: WebhookReceiver;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200 },
    });
    hooks = await startWebhookReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await hooks.close();
    await t.database.drop();
  });

  it('tells a tenant backend whom to notify, without any push subscription', async () => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob', 'cat');
    const endpoint = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: hooks.url, events: ['notification.requested'] },
    });
    expect(endpoint.statusCode, endpoint.body).toBe(201);
    const group = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      members: ['bob', 'cat'],
    });
    const groupId = group.json<{ id: string }>().id;
    const sent = await sendText(t, tenant, 'ann', groupId, 'ship it');
    await hooks.waitFor((received) => received.some((r) => r.json.type === 'notification.requested'));
    const notice = hooks.received.find((r) => r.json.type === 'notification.requested');
    expect(notice?.json.data).toEqual({
      conversation_id: groupId,
      message_id: sent.id,
      sender_id: 'ann',
      recipients: ['bob', 'cat'],
      preview: 'ship it',
    });
    expect(notice?.headers['webhook-signature']).toMatch(/^v1,/);
    // Only the push decision: the endpoint did not subscribe to message.created.
    expect(hooks.received.map((r) => r.json.type)).toEqual(['notification.requested']);

    // Previews off: the same decision, without the text.
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/v1/admin/tenants/${tenant.id}`,
      headers: bearer(t.adminToken),
      payload: { push_previews: false },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const quiet = await sendText(t, tenant, 'bob', groupId, 'not for the lock screen');
    await hooks.waitFor((received) => received.length === 2);
    expect(hooks.received[1]?.json.data).toEqual({
      conversation_id: groupId,
      message_id: quiet.id,
      sender_id: 'bob',
      recipients: ['ann', 'cat'],
    });
  });
});

describe('the push consumer and endpoints that receive "*"', () => {
  let t: TestApp;
  let hooks: WebhookReceiver;

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 30, sweepEveryMs: 200 },
    });
    hooks = await startWebhookReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await hooks.close();
    await t.database.drop();
  });

  /** A tenant with ann and bob, a group of theirs, and a webhook endpoint receiving `events`. */
  const tenantWithEndpoint = async (events: string[]) => {
    const tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const endpoint = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: hooks.url, events },
    });
    expect(endpoint.statusCode, endpoint.body).toBe(201);
    const group = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      members: ['bob'],
    });
    expect(group.statusCode, group.body).toBe(201);
    return { tenant, groupId: group.json<{ id: string }>().id };
  };
  /** The `push` consumer's position of each tenant, read as the database's owner (every tenant). */
  const pushPositions = async () =>
    asOwner(async (tx) =>
      Object.fromEntries(
        rowsOf<{ tenant_id: string; prev: string }>(
          await tx.execute(sql`SELECT tenant_id, prev FROM event_consumers WHERE consumer = 'push'`),
        ).map((row) => [row.tenant_id, row.prev]),
      ),
    );
  /** Runs `work` as the owner (migrations run so; row-level security does not apply), in one transaction. */
  const asOwner = <T>(work: (tx: Tx) => Promise<T>) =>
    t.database.db.orm.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL ROLE NONE`);
      return work(tx);
    });
  const notified = (messageId: string) => (received: ReceivedWebhook[]) =>
    received.some((r) => r.json.type === 'notification.requested' && r.json.data.message_id === messageId);

  it('is followed from the creation of an endpoint that receives "*", which gets notification.requested', async () => {
    const { tenant, groupId } = await tenantWithEndpoint(['*']);
    expect(Object.keys(await pushPositions())).toContain(tenant.id);
    const sent = await sendText(t, tenant, 'ann', groupId, 'for everyone');
    await hooks.waitFor(notified(sent.id));
    const notice = hooks.received.find((r) => notified(sent.id)([r]));
    expect(notice?.json.data).toEqual({
      conversation_id: groupId,
      message_id: sent.id,
      sender_id: 'ann',
      recipients: ['bob'],
      preview: 'for everyone',
    });
  });

  it('is started by the push migration for the endpoints that already received "*", from the present', async () => {
    // The migration's last step, as it runs on upgrade.
    const folder = fileURLToPath(new URL('../src/db/migrations/', import.meta.url));
    const file = readdirSync(folder).find((name) => name.endsWith('_push.sql'));
    if (file === undefined) throw new Error('no push migration');
    const step = readFileSync(`${folder}${file}`, 'utf8').split('--> statement-breakpoint').at(-1) ?? '';
    expect(step).toContain('INSERT INTO "event_consumers"');

    const everything = await tenantWithEndpoint(['*']);
    const messagesOnly = await tenantWithEndpoint(['message.created']);
    const followedAlready = await tenantWithEndpoint(['*']);
    // As before the migration: no push consumer for the first two. The third keeps the one it has: a
    // position the step finds does not make it fail (ON CONFLICT DO NOTHING).
    await asOwner((tx) =>
      tx.execute(sql`DELETE FROM event_consumers WHERE consumer = 'push'
                     AND tenant_id IN (${everything.tenant.id}, ${messagesOnly.tenant.id})`),
    );
    const before = await pushPositions();
    expect(Object.keys(before)).not.toContain(everything.tenant.id);
    const unfollowed = await sendText(t, everything.tenant, 'ann', everything.groupId, 'before the upgrade');

    await asOwner((tx) => tx.execute(sql.raw(step)));

    const after = await pushPositions();
    expect(Object.keys(after)).toContain(everything.tenant.id);
    expect(Object.keys(after)).not.toContain(messagesOnly.tenant.id);
    expect(Object.keys(after)).toContain(followedAlready.tenant.id);
    // Followed from the upgrade on: the next message is notified, the one before it is not.
    const sent = await sendText(t, everything.tenant, 'ann', everything.groupId, 'after the upgrade');
    await hooks.waitFor(notified(sent.id));
    await settle();
    expect(notified(unfollowed.id)(hooks.received)).toBe(false);
    // The endpoint did get that message as message.created: it was only not a push decision.
    expect(
      hooks.received.some((r) => r.json.type === 'message.created' && r.json.data.data?.id === unfollowed.id),
    ).toBe(true);
  });
});
