import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTenant } from '../src/db/tenant-scope.ts';
import { newId } from '../src/ids.ts';
import { insertEndpoint } from '../src/modules/webhooks/webhooks.repository.ts';
import { webhookSecretBox } from '../src/modules/webhooks/webhooks.service.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import {
  asUser,
  bearer,
  createTenantWithUsers,
  expectProblem,
  sendText,
  type TestTenant,
} from './helpers/factories.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.ts';

interface Delivery {
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  type: string;
}

async function waitUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`never happened; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A tenant with a group of two, on an app whose outbound policy and timings the test chooses. */
async function setUp(t: TestApp) {
  const tenant = await createTenantWithUsers(t, 'ann', 'bob');
  const response = await asUser(t, tenant, 'ann').post('/v1/conversations', {
    type: 'group',
    name: 'failures',
    members: ['bob'],
  });
  return { tenant, conversationId: response.json<{ id: string }>().id };
}

const deliveriesOf = async (t: TestApp, tenant: TestTenant, endpointId: string) => {
  const response = await t.app.inject({
    method: 'GET',
    url: `/v1/webhooks/${endpointId}/deliveries`,
    headers: bearer(tenant.apiKey.secret),
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ data: Delivery[] }>().data;
};

describe('webhooks to private addresses, with the operator setting off (the default)', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      backgroundWork: { sendEveryMs: 50, sweepEveryMs: 200 },
    });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
    await receiver.close();
  });

  it('are refused at creation, and at connect time for an endpoint stored before the rule', async () => {
    const { tenant, conversationId } = await setUp(t);
    for (const url of [
      receiver.url,
      'http://localhost:9/x',
      'http://169.254.169.254/latest',
      'http://10.1.2.3/',
    ]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/webhooks',
        headers: bearer(tenant.apiKey.secret),
        payload: { url, events: ['*'] },
      });
      expectProblem(response, 400, 'validation_failed');
    }
    // An endpoint already stored with a loopback url (the setting was on, or its name resolved elsewhere
    // then): every attempt is refused when connecting, and the receiver never sees a request.
    const endpointId = newId();
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      insertEndpoint(scope, {
        id: endpointId,
        url: receiver.url,
        events: ['message.created'],
        secrets: [{ sealed: webhookSecretBox(t.serverKey).seal('whsec_dGVzdA=='), expires_at: null }],
      }),
    );
    await inTenant(t.database.db.orm, tenant.id, (scope) =>
      scope.tx.execute(sql`INSERT INTO event_consumers (tenant_id, consumer, prev)
                           VALUES (${tenant.id}, 'webhooks', pg_current_snapshot()::text) ON CONFLICT DO NOTHING`),
    );
    await sendText(t, tenant, 'ann', conversationId, 'to loopback');
    const [delivery] = await waitUntil(
      () => deliveriesOf(t, tenant, endpointId),
      (rows) => (rows[0]?.attempts ?? 0) >= 1,
    );
    expect(delivery).toMatchObject({ status: 'pending', attempts: 1, last_status_code: null });
    expect(delivery?.last_error).toMatch(/^refused_address/);
    expect(receiver.received).toEqual([]);
  });
});

describe('webhook endpoints that keep failing, or hang', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let witness: WebhookReceiver;
  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: {
        retryScheduleMs: [40, 40, 40, 40, 40, 40, 40],
        // Long enough that a slow machine never disables the endpoints of the other tests, which fail a
        // few times in a row (and a delivery gives up after 8 attempts, about 320 ms).
        disableAfterMs: 1_000,
        attemptTimeoutMs: 300,
        sendEveryMs: 30,
        sweepEveryMs: 200,
      },
    });
    receiver = await startWebhookReceiver();
    witness = await startWebhookReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
    await receiver.close();
    await witness.close();
  });

  it('gives up on an attempt at the deadline and retries it', async () => {
    const { tenant, conversationId } = await setUp(t);
    receiver.received.length = 0;
    receiver.answer = (_request, index) => (index === 0 ? 'hang' : 200);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: receiver.url, events: ['message.created'] },
    });
    const endpointId = created.json<{ id: string }>().id;
    await sendText(t, tenant, 'ann', conversationId, 'slow');
    const [delivery] = await waitUntil(
      () => deliveriesOf(t, tenant, endpointId),
      (rows) => rows[0]?.status === 'delivered',
    );
    expect(delivery).toMatchObject({ attempts: 2, last_status_code: 200 });
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([
      receiver.received[0]?.headers['webhook-id'],
      receiver.received[0]?.headers['webhook-id'],
    ]);
  });

  it('sends again, with the same webhook-id, what a receiver killed mid-request never answered', async () => {
    const { tenant, conversationId } = await setUp(t);
    receiver.received.length = 0;
    receiver.answer = (_request, index) => (index < 2 ? 'cut' : 204);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: receiver.url, events: ['message.created'] },
    });
    const endpointId = created.json<{ id: string }>().id;
    await sendText(t, tenant, 'ann', conversationId, 'cut short');
    await sendText(t, tenant, 'ann', conversationId, 'behind it');
    const rows = await waitUntil(
      () => deliveriesOf(t, tenant, endpointId),
      (list) => list.length === 2 && list.every((row) => row.status === 'delivered'),
    );
    expect(rows.map((row) => row.attempts).sort()).toEqual([1, 3]);
    expect(receiver.received.map((r) => r.json.data.data?.text)).toEqual([
      'cut short',
      'cut short',
      'cut short',
      'behind it',
    ]);
    expect(new Set(receiver.received.slice(0, 3).map((r) => r.headers['webhook-id'])).size).toBe(1);
    const retried = rows.find((row) => row.attempts === 3);
    expect(retried).toMatchObject({ last_status_code: 204, last_error: null });
  });

  it('disables an endpoint failing for the whole window and tells the others (webhook.disabled)', async () => {
    const { tenant, conversationId } = await setUp(t);
    receiver.answer = () => 500;
    const headers = bearer(tenant.apiKey.secret);
    const failing = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers,
      payload: { url: receiver.url, events: ['message.created'] },
    });
    const failingId = failing.json<{ id: string }>().id;
    await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers,
      payload: { url: witness.url, events: ['webhook.disabled'] },
    });
    // Failures spread over more than the window (1 s here, five days in production): each message's
    // delivery fails 8 times, 40 ms apart, before the next one's turn.
    for (let i = 0; i < 5; i += 1) {
      await sendText(t, tenant, 'ann', conversationId, `failing ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    const endpoint = await waitUntil(
      async () =>
        (await t.app.inject({ method: 'GET', url: `/v1/webhooks/${failingId}`, headers })).json<{
          enabled: boolean;
          disabled_reason: string | null;
        }>(),
      (row) => !row.enabled,
    );
    expect(endpoint.disabled_reason).toBe('failing');
    await witness.waitFor((received) => received.some((r) => r.json.type === 'webhook.disabled'));
    const notice = witness.received.find((r) => r.json.type === 'webhook.disabled');
    expect(notice?.json.data).toMatchObject({ webhook_id: failingId, reason: 'failing', url: receiver.url });
    // Disabled, it is sent nothing more.
    const attempts = receiver.received.length;
    await sendText(t, tenant, 'ann', conversationId, 'after disabling');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received).toHaveLength(attempts);
  });
});

describe('a conversation with many deliveries waiting', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    // No periodic pass within the test: what goes, goes because a pass was woken.
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 600_000, sweepEveryMs: 200 },
    });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
    await receiver.close();
  });

  it('sends them one after another on one claim, not one per pass', async () => {
    const { tenant, conversationId } = await setUp(t);
    const headers = bearer(tenant.apiKey.secret);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers,
      payload: { url: receiver.url, events: ['message.created'] },
    });
    const endpointId = created.json<{ id: string }>().id;
    const since = new Date().toISOString();
    for (let i = 0; i < 30; i += 1) await sendText(t, tenant, 'ann', conversationId, `m${i}`);
    await receiver.waitFor((received) => received.length === 30);
    // Thirty more in one lane at once, and one wake-up (the replay's).
    const replay = await t.app.inject({
      method: 'POST',
      url: `/v1/webhooks/${endpointId}/replay`,
      headers,
      payload: { since },
    });
    expect(replay.json()).toEqual({ replayed: 30 });
    await receiver.waitFor((received) => received.length === 60);
    expect(receiver.received.slice(30).map((r) => r.json.data.data?.text)).toEqual(
      Array.from({ length: 30 }, (_, i) => `m${i}`),
    );
  });
});
