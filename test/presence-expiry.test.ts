import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../src/modules/events/events.bus.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { DEFAULT_HUB_TIMINGS } from '../src/realtime/connection.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { actingAs, createTenantWithUsers, mintUserToken } from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

// Two apps sharing a bus, as two processes of one deployment. `b`'s bus can be cut: from then on nothing
// it publishes arrives, as when a process is killed with -9 (no offline announcement, no renewal).
const shared = createLocalBus();
let isCut = false;
const cuttable: Bus = { ...shared, publish: (message) => (isCut ? undefined : shared.publish(message)) };
const hubTimings = { ...DEFAULT_HUB_TIMINGS, offlineAfterMs: 200, presenceRenewMs: 100, presenceTtlMs: 500 };
let a: TestApp;
let b: TestApp;
let baseA = '';
let baseB = '';

beforeAll(async () => {
  a = await buildTestApp(await createTestDatabase(), { hubTimings, bus: shared });
  b = await buildTestApp(a.database, {
    hubTimings,
    bus: cuttable,
    adminToken: a.adminToken,
    serverKey: a.serverKey,
  });
  baseA = await listenForSockets(a);
  baseB = await listenForSockets(b);
});

afterAll(async () => {
  await b.app.close();
  await a.app.close();
  await a.database.drop();
});

describe('presence of a process that dies', () => {
  it('expires unless renewed: the others announce its users offline', async () => {
    const tenant = await createTenantWithUsers(a, 'alice', 'bob');
    await a.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(tenant, 'alice'),
      payload: { type: 'group', members: ['bob'] },
    });
    const alice = await TestSocket.open(
      `${baseA}/v1/ws?access_token=${await mintUserToken(a, tenant, 'alice')}`,
    );
    await alice.waitFor((frame) => frame.type === 'ready');
    const bob = await TestSocket.open(`${baseB}/v1/ws?access_token=${await mintUserToken(a, tenant, 'bob')}`);
    await bob.waitFor((frame) => frame.type === 'ready');
    const isBob = (status: string) => (frame: { event?: { type: string; data: Record<string, unknown> } }) =>
      frame.event?.type === 'presence.changed' &&
      frame.event.data.user_id === 'bob' &&
      frame.event.data.status === status;
    await alice.waitFor(isBob('online'));

    // Renewals keep bob online well past the TTL while b lives.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(alice.frames.some(isBob('offline'))).toBe(false);

    isCut = true;
    await alice.waitFor(isBob('offline'), 3000);
    await alice.close();
    await bob.close();
  });
});

describe('presence between processes with different TTLs', () => {
  it("judges an entry by its announcer's TTL: a short-TTL process does not flap a long-TTL one's users", async () => {
    // `short` would drop an entry after 300 ms; `long` renews its own every 1,000 ms (TTL 3,500 ms).
    const bus = createLocalBus();
    const short = await buildTestApp(a.database, {
      hubTimings: { ...hubTimings, presenceRenewMs: 100, presenceTtlMs: 300 },
      bus,
      adminToken: a.adminToken,
      serverKey: a.serverKey,
    });
    const long = await buildTestApp(a.database, {
      hubTimings: { ...hubTimings, presenceRenewMs: 1000, presenceTtlMs: 3500 },
      bus,
      adminToken: a.adminToken,
      serverKey: a.serverKey,
    });
    try {
      const baseShort = await listenForSockets(short);
      const baseLong = await listenForSockets(long);
      const tenant = await createTenantWithUsers(a, 'alice', 'bob');
      await a.app.inject({
        method: 'POST',
        url: '/v1/conversations',
        headers: actingAs(tenant, 'alice'),
        payload: { type: 'group', members: ['bob'] },
      });
      const alice = await TestSocket.open(
        `${baseShort}/v1/ws?access_token=${await mintUserToken(a, tenant, 'alice')}`,
      );
      await alice.waitFor((frame) => frame.type === 'ready');
      const bob = await TestSocket.open(
        `${baseLong}/v1/ws?access_token=${await mintUserToken(a, tenant, 'bob')}`,
      );
      await bob.waitFor((frame) => frame.type === 'ready');
      const isBob = (frame: { event?: { type: string; data: Record<string, unknown> } }) =>
        frame.event?.type === 'presence.changed' && frame.event.data.user_id === 'bob';
      await alice.waitFor(isBob);

      // Three of long's renewal periods, ten of short's TTLs: bob stays online, announced once.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(alice.frames.filter(isBob).map((frame) => frame.event?.data.status)).toEqual(['online']);
      await alice.close();
      await bob.close();
    } finally {
      await long.app.close();
      await short.app.close();
    }
  });
});
