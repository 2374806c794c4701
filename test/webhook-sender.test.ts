import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { webhookDeliveries } from '../src/db/schema/webhooks.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { newId } from '../src/ids.ts';
import { WebhookSender, type AttemptResult } from '../src/modules/webhooks/webhook-sender.ts';
import * as repository from '../src/modules/webhooks/webhooks.repository.ts';
import { webhookSecretBox } from '../src/modules/webhooks/webhooks.service.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { createTenant, type TestTenant } from './helpers/factories.ts';

// The real repository, with its bulk record counted.
vi.mock('../src/modules/webhooks/webhooks.repository.ts', async (importOriginal) => {
  const original = await importOriginal<typeof repository>();
  return { ...original, recordSuccesses: vi.fn(original.recordSuccesses) };
});

/** A request the sender made, held until the test answers it. */
interface Held {
  lane: string;
  text: string;
  answer: (result: AttemptResult) => void;
}

/**
 * The sender on its own (docs/BACKGROUND.md, "Throughput"), on a real database, with a `post` the test
 * answers by hand: how many lanes it works at once, and how it records what succeeded.
 */
describe('the webhook sender', () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    // The app's own sender never runs a pass here: no tick within the test, and no wake-up (the rows are
    // written directly, not dispatched from the log).
    t = await buildTestApp(await createTestDatabase(), {
      backgroundWork: { sendEveryMs: 600_000, sweepEveryMs: 600_000 },
    });
    tenant = await createTenant(t);
  });
  afterAll(async () => {
    await t.app.close();
    await t.database.drop();
  });

  /** An endpoint with `perLane` test deliveries in each of `lanes` lanes, all due. */
  async function endpointWithLanes(lanes: number, perLane: number) {
    const endpointId = newId();
    const laneIds = Array.from({ length: lanes }, () => newId());
    await inTenant(t.database.db.orm, tenant.id, async (scope) => {
      await repository.insertEndpoint(scope, {
        id: endpointId,
        url: 'https://hooks.example.com/parley',
        events: ['*'],
        secrets: [{ sealed: webhookSecretBox(t.serverKey).seal('whsec_dGVzdA=='), expires_at: null }],
      });
      const rows: repository.NewDelivery[] = [];
      // In order within each lane: ids (UUIDv7) grow, and a lane's test deliveries go by id.
      for (let n = 0; n < perLane; n += 1) {
        for (const lane of laneIds) {
          const id = newId();
          rows.push({
            id,
            endpointId,
            lane,
            source: 'test',
            type: 'webhook.test',
            payload: { type: 'webhook.test', timestamp: new Date().toISOString(), data: { lane, n } },
            messageId: `msg_${id}`,
            nextAttemptAt: new Date(),
          });
        }
      }
      await repository.insertDeliveries(scope, rows);
    });
    return { endpointId, laneIds };
  }

  function senderHolding(held: Held[]) {
    return new WebhookSender({
      orm: t.database.db.orm,
      serverKey: t.serverKey,
      post: ({ body }) =>
        new Promise<AttemptResult>((answer) => {
          const { data } = JSON.parse(body) as { data: { lane: string; n: number } };
          held.push({ lane: data.lane, text: String(data.n), answer });
        }),
    });
  }

  const waitFor = async (condition: () => boolean | Promise<boolean>, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  const statuses = async (endpointId: string) =>
    inTenant(t.database.db.orm, tenant.id, async (scope) => {
      const rows = await scope.tx
        .select({ status: webhookDeliveries.status })
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.endpointId, endpointId));
      return rows.map((row) => row.status);
    });

  it('works 40 lanes at once and records the successes that finish together in one statement', async () => {
    const { endpointId, laneIds } = await endpointWithLanes(40, 3);
    const held: Held[] = [];
    const sender = senderHolding(held);
    const recorded = vi.mocked(repository.recordSuccesses);
    recorded.mockClear();
    const pass = sender.runOnce(64);
    const sent: Held[] = [];
    for (let round = 1; round <= 3; round += 1) {
      // Every lane's head is out at once, and nothing more of any lane until its head is answered.
      await waitFor(() => held.length === 40, `40 requests in round ${round} (have ${held.length})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(held).toHaveLength(40);
      const answering = held.splice(0);
      sent.push(...answering);
      for (const request of answering) request.answer({ status: 204 });
    }
    expect(await pass).toBe(40);
    expect(held).toEqual([]);
    // Each lane's deliveries went in order, one at a time.
    for (const lane of laneIds) {
      expect(sent.filter((request) => request.lane === lane).map((request) => request.text)).toEqual([
        '0',
        '1',
        '2',
      ]);
    }
    expect(await statuses(endpointId)).toEqual(Array.from({ length: 120 }, () => 'delivered'));
    // 120 successes, in a few statements: the first answer's alone, the rest of a round together.
    const items = recorded.mock.calls.reduce((sum, [, successes]) => sum + successes.length, 0);
    expect(items).toBe(120);
    expect(recorded.mock.calls.length).toBeLessThanOrEqual(9);
  });

  it('claims a lane that became due while another lane waits for a slow receiver', async () => {
    const slow = await endpointWithLanes(1, 1);
    const held: Held[] = [];
    const sender = senderHolding(held);
    const pass = sender.runOnce(64);
    await waitFor(() => held.length === 1, 'the slow request');
    // A new lane is due while the pass waits for the slow one: told so, the pass sends it at once.
    const quick = await endpointWithLanes(1, 1);
    sender.nudge();
    await waitFor(() => held.length === 2, 'the new lane sent while the slow one is out');
    expect(held.map((request) => request.lane)).toEqual([slow.laneIds[0], quick.laneIds[0]]);
    held[1]?.answer({ status: 200 });
    await waitFor(
      async () => (await statuses(quick.endpointId))[0] === 'delivered',
      'the quick one recorded',
    );
    held[0]?.answer({ status: 200 });
    expect(await pass).toBe(2);
    expect(await statuses(slow.endpointId)).toEqual(['delivered']);
  });
});
