import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, describeWithPostgres } from './helpers/database.ts';
import { asUser, bearer, createTenantWithUsers, sendText, type TestTenant } from './helpers/factories.ts';
import { runCli } from './helpers/processes.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.ts';

/**
 * What operators see of background work: /metrics (gauges by kind and state, attempt counters) and the
 * CLI (`parley jobs status`, `parley jobs retry`), on a delivery that failed for good.
 */
describe('background work, as operators see it', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let receiver: WebhookReceiver;
  let endpointId: string;

  const metric = async (line: RegExp) => {
    const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    const match = text.split('\n').find((row) => line.test(row));
    return match === undefined ? undefined : Number(match.split(' ').at(-1));
  };
  const deliveries = async () =>
    (
      await t.app.inject({
        method: 'GET',
        url: `/v1/webhooks/${endpointId}/deliveries`,
        headers: bearer(tenant.apiKey.secret),
      })
    ).json<{ data: { status: string }[] }>().data;
  const waitFor = async (check: () => Promise<boolean>) => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('never happened');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { retryScheduleMs: [20, 20], sendEveryMs: 30, sweepEveryMs: 200 },
    });
    receiver = await startWebhookReceiver();
    receiver.answer = () => 500;
    tenant = await createTenantWithUsers(t, 'ann', 'bob');
    const conversation = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      name: 'ops',
      members: ['bob'],
    });
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: receiver.url, events: ['message.created'] },
    });
    endpointId = created.json<{ id: string }>().id;
    await sendText(t, tenant, 'ann', conversation.json<{ id: string }>().id, 'will fail');
    await waitFor(async () => (await deliveries())[0]?.status === 'failed');
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
    await receiver.close();
  });

  it('counts it in /metrics: failed items, their age, attempts by outcome, the log reader', async () => {
    expect(await metric(/^parley_background_work_items\{kind="webhook",state="failed"\}/)).toBe(1);
    expect(
      await metric(/^parley_background_work_oldest_seconds\{kind="webhook",state="failed"\}/),
    ).toBeGreaterThanOrEqual(0);
    expect(await metric(/^parley_webhook_attempts_total\{outcome="retrying"\}/)).toBe(2);
    expect(await metric(/^parley_webhook_attempts_total\{outcome="failed"\}/)).toBe(1);
    expect(await metric(/^parley_background_work_items\{kind="consumer:webhooks",state="position"\}/)).toBe(
      1,
    );
  });

  describeWithPostgres('the CLI on the same database', () => {
    it('shows it with `parley jobs status` and sends it again with `parley jobs retry`', async () => {
      const env = { DATABASE_URL: String(t.database.url) };
      const status = await runCli(['jobs', 'status'], env);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toContainEqual(
        expect.objectContaining({ kind: 'webhook', state: 'failed', items: 1 }),
      );
      receiver.answer = () => 200;
      const retry = await runCli(['jobs', 'retry', tenant.id, '--webhook', endpointId], env);
      expect(retry.code, retry.stderr).toBe(0);
      expect(JSON.parse(retry.stdout)).toEqual({ retried: 1 });
      // The running server sends it within a pass.
      await waitFor(async () => (await deliveries())[0]?.status === 'delivered');
      const bad = await runCli(['jobs', 'retry', 'not-a-uuid'], env);
      expect(bad.code).not.toBe(0);
    }, 60_000);
  });
});
