import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  asUser,
  bearer,
  createTenantWithUsers,
  expectProblem,
  mintUserToken,
  sendText,
  type TestTenant,
} from './helpers/factories.ts';
import {
  startWebhookReceiver,
  type ReceivedWebhook,
  type WebhookReceiver,
} from './helpers/webhook-receiver.ts';

/** A schedule a test can wait out: the contract's shape (eight attempts), in milliseconds. */
const FAST_SCHEDULE = [30, 30, 30, 30, 30, 30, 30];

interface Endpoint {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  disabled_reason: string | null;
  secret?: string;
}

interface Delivery {
  id: string;
  webhook_message_id: string;
  type: string;
  source: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
}

describe('webhooks', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let receiver: WebhookReceiver;
  let conversationId: string;
  let otherConversationId: string;

  const backend = () => bearer(tenant.apiKey.secret);
  const createEndpoint = async (body: Record<string, unknown>) => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: backend(),
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<Endpoint>();
  };
  const deliveriesOf = async (endpointId: string, query = '') => {
    const response = await t.app.inject({
      method: 'GET',
      url: `/v1/webhooks/${endpointId}/deliveries${query}`,
      headers: backend(),
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ data: Delivery[]; next_cursor: string | null }>().data;
  };
  const waitForDeliveries = async (endpointId: string, predicate: (rows: Delivery[]) => boolean) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rows = await deliveriesOf(endpointId);
      if (predicate(rows)) return rows;
      if (Date.now() > deadline) throw new Error(`deliveries never matched: ${JSON.stringify(rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const texts = (received: ReceivedWebhook[], type = 'message.created') =>
    received.filter((request) => request.json.type === type).map((request) => request.json.data.data?.text);

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { retryScheduleMs: FAST_SCHEDULE, sendEveryMs: 50, sweepEveryMs: 200 },
    });
    tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const create = async () => {
      const response = await asUser(t, tenant, 'ann').post('/v1/conversations', {
        type: 'group',
        name: 'hooks',
        members: ['bob'],
      });
      expect(response.statusCode, response.body).toBe(201);
      return response.json<{ id: string }>().id;
    };
    conversationId = await create();
    otherConversationId = await create();
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
  });

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterAll(() => receiver.close());

  it('manages endpoints: the secret once, reads without it, patch, delete; backend only', async () => {
    const created = await createEndpoint({
      url: receiver.url,
      events: ['message.created'],
      description: 'crm',
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(created).toMatchObject({ url: receiver.url, events: ['message.created'], enabled: true });

    const read = await t.app.inject({ method: 'GET', url: `/v1/webhooks/${created.id}`, headers: backend() });
    expect(read.statusCode).toBe(200);
    expect(read.json()).not.toHaveProperty('secret');

    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/v1/webhooks/${created.id}`,
      headers: backend(),
      payload: { events: ['*'], enabled: false },
    });
    expect(patched.json()).toMatchObject({ events: ['*'], enabled: false, disabled_reason: 'manual' });

    // A user (even through the api key) may not manage webhooks; another tenant does not see them.
    const asAnn = await t.app.inject({
      method: 'GET',
      url: '/v1/webhooks',
      headers: bearer(await mintUserToken(t, tenant, 'ann')),
    });
    expectProblem(asAnn, 403, 'forbidden');
    const stranger = await createTenantWithUsers(t, 'eve');
    const foreign = await t.app.inject({
      method: 'GET',
      url: `/v1/webhooks/${created.id}`,
      headers: bearer(stranger.apiKey.secret),
    });
    expectProblem(foreign, 404, 'not_found');

    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/v1/webhooks/${created.id}`,
      headers: backend(),
    });
    expect(removed.statusCode).toBe(204);
    const gone = await t.app.inject({ method: 'GET', url: `/v1/webhooks/${created.id}`, headers: backend() });
    expectProblem(gone, 404, 'not_found');
  });

  it('refuses bad input with a problem and stores nothing', async () => {
    for (const body of [
      { url: receiver.url, events: ['message.exploded'] },
      { url: receiver.url, events: [] },
      { url: 'ftp://example.com/hooks', events: ['*'] },
      { url: receiver.url },
    ]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/webhooks',
        headers: backend(),
        payload: body,
      });
      expectProblem(response, 400, 'validation_failed');
    }
    const list = await t.app.inject({ method: 'GET', url: '/v1/webhooks', headers: backend() });
    expect(list.json<{ data: Endpoint[] }>().data).toEqual([]);
  });

  it('delivers events signed by Standard Webhooks, as on the socket, and lists them', async () => {
    const endpoint = await createEndpoint({ url: receiver.url, events: ['message.created'] });
    const sent = await sendText(t, tenant, 'ann', conversationId, 'hello hooks');
    await receiver.waitFor((received) => texts(received).includes('hello hooks'));
    const request = receiver.received.find((r) => r.json.data.data?.text === 'hello hooks');
    if (!request || endpoint.secret === undefined) throw new Error('unreachable');

    // The receiver verifies it with the secret it was given, as any Standard Webhooks library does.
    const verified = new Webhook(endpoint.secret).verify(request.body, {
      'webhook-id': String(request.headers['webhook-id']),
      'webhook-timestamp': String(request.headers['webhook-timestamp']),
      'webhook-signature': String(request.headers['webhook-signature']),
    });
    expect(verified).toMatchObject({ type: 'message.created' });
    expect(request.json.data).toMatchObject({
      type: 'message.created',
      conversation_id: conversationId,
      seq: sent.seq,
      data: { id: sent.id, text: 'hello hooks', sender_id: 'ann' },
    });
    expect(typeof request.json.data.cursor).toBe('string');
    // Only what it subscribed to: the sender's own read.updated is not sent.
    expect(receiver.received.some((r) => r.json.type === 'read.updated')).toBe(false);

    const rows = await waitForDeliveries(endpoint.id, (list) => list[0]?.status === 'delivered');
    expect(rows[0]).toMatchObject({
      type: 'message.created',
      source: 'event',
      status: 'delivered',
      attempts: 1,
      last_status_code: 200,
      webhook_message_id: request.headers['webhook-id'],
    });
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });

  it('retries failures with the same webhook-id, in order per conversation, others flowing meanwhile', async () => {
    receiver.received.length = 0;
    let failuresLeft = 3;
    receiver.answer = (request) => {
      if (request.json.data.data?.text === 'first' && failuresLeft > 0) {
        failuresLeft -= 1;
        return 503;
      }
      return 204;
    };
    const endpoint = await createEndpoint({ url: receiver.url, events: ['message.created'] });
    await sendText(t, tenant, 'ann', conversationId, 'first');
    await sendText(t, tenant, 'bob', conversationId, 'second');
    await sendText(t, tenant, 'ann', otherConversationId, 'elsewhere');
    await sendText(t, tenant, 'ann', conversationId, 'third');
    await receiver.waitFor((received) => texts(received).includes('third'));

    const inConversation = receiver.received
      .filter((r) => r.json.data.conversation_id === conversationId)
      .map((r) => r.json.data.data?.text);
    // Three refusals of the first, then each once, in the order they were sent.
    expect(inConversation).toEqual(['first', 'first', 'first', 'first', 'second', 'third']);
    const ids = new Set(
      receiver.received.filter((r) => r.json.data.data?.text === 'first').map((r) => r.headers['webhook-id']),
    );
    expect(ids.size).toBe(1);
    receiver.answer = () => 200;
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });

  it('marks a delivery failed when the schedule runs out, and retries it on request', async () => {
    receiver.received.length = 0;
    receiver.answer = () => 500;
    const endpoint = await createEndpoint({ url: receiver.url, events: ['message.created'] });
    await sendText(t, tenant, 'ann', conversationId, 'doomed');
    const rows = await waitForDeliveries(endpoint.id, (list) => list[0]?.status === 'failed');
    expect(rows[0]).toMatchObject({ status: 'failed', attempts: 8, last_status_code: 500 });
    expect(texts(receiver.received)).toEqual(Array(8).fill('doomed'));

    receiver.answer = () => 200;
    const retried = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${endpoint.id}/deliveries/${rows[0]?.id}/retry`,
      headers: backend(),
    });
    expect(retried.statusCode, retried.body).toBe(202);
    await waitForDeliveries(endpoint.id, (list) => list[0]?.status === 'delivered');
    const failed = await deliveriesOf(endpoint.id, '?status=failed');
    expect(failed).toEqual([]);
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });

  it('sends a test delivery, and signs with both secrets for a day after a rotation', async () => {
    receiver.received.length = 0;
    const endpoint = await createEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const rotated = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${endpoint.id}/rotate-secret`,
      headers: backend(),
    });
    expect(rotated.statusCode, rotated.body).toBe(200);
    const newSecret = rotated.json<Endpoint>().secret;
    expect(newSecret).not.toBe(endpoint.secret);

    const test = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${endpoint.id}/test`,
      headers: backend(),
    });
    expect(test.statusCode, test.body).toBe(202);
    await receiver.waitFor((received) => received.some((r) => r.json.type === 'webhook.test'));
    const request = receiver.received.find((r) => r.json.type === 'webhook.test');
    if (!request) throw new Error('unreachable');
    expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [endpoint.secret, newSecret]) {
      expect(() =>
        new Webhook(String(secret)).verify(request.body, {
          'webhook-id': String(request.headers['webhook-id']),
          'webhook-timestamp': String(request.headers['webhook-timestamp']),
          'webhook-signature': String(request.headers['webhook-signature']),
        }),
      ).not.toThrow();
    }
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });

  it('replays the events since a time with their webhook-ids', async () => {
    receiver.received.length = 0;
    const endpoint = await createEndpoint({ url: receiver.url, events: ['message.created'] });
    const since = new Date().toISOString();
    await sendText(t, tenant, 'ann', conversationId, 'once');
    await sendText(t, tenant, 'ann', conversationId, 'twice');
    await receiver.waitFor((received) => texts(received).includes('twice'));
    const firstIds = receiver.received.map((r) => r.headers['webhook-id']);

    const replay = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${endpoint.id}/replay`,
      headers: backend(),
      payload: { since },
    });
    expect(replay.statusCode, replay.body).toBe(202);
    expect(replay.json()).toEqual({ replayed: 2 });
    await receiver.waitFor((received) => received.length === 4);
    expect(texts(receiver.received)).toEqual(['once', 'twice', 'once', 'twice']);
    expect(receiver.received.slice(2).map((r) => r.headers['webhook-id'])).toEqual(firstIds);
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });

  it('holds deliveries while disabled and sends them, in order, once enabled', async () => {
    receiver.received.length = 0;
    const endpoint = await createEndpoint({ url: receiver.url, events: ['message.created'] });
    const patch = (enabled: boolean) =>
      t.app.inject({
        method: 'PATCH',
        url: `/v1/webhooks/${endpoint.id}`,
        headers: backend(),
        payload: { enabled },
      });
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // Disabled while its first delivery waits for a retry: nothing goes until it is enabled.
    receiver.answer = () => 500;
    await sendText(t, tenant, 'ann', conversationId, 'held');
    await receiver.waitFor((received) => received.length >= 1);
    expect((await patch(false)).statusCode).toBe(200);
    await pause(100);
    const attemptsWhileDisabled = receiver.received.length;
    receiver.answer = () => 200;
    await sendText(t, tenant, 'ann', conversationId, 'while disabled');
    await pause(400);
    expect(receiver.received).toHaveLength(attemptsWhileDisabled);

    expect((await patch(true)).statusCode).toBe(200);
    await waitForDeliveries(endpoint.id, (list) => list.every((row) => row.status === 'delivered'));
    // Events logged while it was disabled were not for it (replay sends them, if wanted).
    expect(texts(receiver.received)).not.toContain('while disabled');
    expect(texts(receiver.received).at(-1)).toBe('held');
    await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${endpoint.id}`, headers: backend() });
  });
});
