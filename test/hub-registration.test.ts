import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { WebSocket } from 'ws';
import { createLocalBus } from '../src/realtime/bus.ts';
import { Connection, DEFAULT_HUB_TIMINGS } from '../src/realtime/connection.ts';
import { Hub } from '../src/realtime/hub.ts';
import { createConversationsService } from '../src/modules/conversations/conversations.service.ts';
import { createEventLog } from '../src/modules/events/event-log.ts';
import { createTenantsService } from '../src/modules/tenants/tenants.service.ts';
import { createUsersService } from '../src/modules/users/users.service.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { createFileLinker, fileLinkKey } from '../src/modules/attachments/file-linker.ts';
import { actingAs, createTenantWithUsers, type TestTenant } from './helpers/factories.ts';

// The hub on its own, with sockets that only record what they are sent: the timing of a registration
// against the close of the tenant's last other socket is then in the test's hands, not the network's.
const bus = createLocalBus();
let t: TestApp;
let hub: Hub;
/** While set, the hub's transactions (loading a socket's conversations) wait for it. */
let gate: Promise<void> | null = null;

beforeAll(async () => {
  t = await buildTestApp(await createTestDatabase(), { bus });
  const orm = t.database.db.orm;
  const gatedOrm = new Proxy(orm, {
    get(target, property, receiver) {
      if (property !== 'transaction') return Reflect.get(target, property, receiver) as unknown;
      return async (...args: Parameters<typeof orm.transaction>) => {
        if (gate !== null) await gate;
        return target.transaction(...args);
      };
    },
  });
  hub = new Hub({
    orm: gatedOrm,
    bus,
    log: pino({ level: 'silent' }),
    timings: { ...DEFAULT_HUB_TIMINGS, safetyPollMs: 100 },
    services: {
      // Built on the gated ORM, so loading a socket's conversations waits for the gate.
      conversations: createConversationsService({
        orm: gatedOrm,
        events: createEventLog(bus),
        links: createFileLinker(fileLinkKey('test'), 3600),
      }),
      tenants: createTenantsService({ orm, serverKey: 'unused', onCredentialsChanged: () => {} }),
      users: createUsersService({ orm }),
    },
  });
});

afterAll(async () => {
  hub.close();
  await t.app.close();
  await t.database.drop();
});

/** A socket as a Connection sees it, recording the text frames sent to it. */
function fakeSocket() {
  const frames: { type: string; event?: { data: { text?: string } } }[] = [];
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    extensions: '',
    send(data: Buffer | string) {
      frames.push(JSON.parse(data.toString()) as (typeof frames)[number]);
    },
    close() {
      socket.readyState = 3;
    },
  };
  return { socket: socket as unknown as WebSocket, frames };
}

async function group(): Promise<{ tenant: TestTenant; conversationId: string }> {
  const tenant = await createTenantWithUsers(t, 'alice', 'bob');
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/conversations',
    headers: actingAs(tenant, 'alice'),
    payload: { type: 'group', members: ['bob'] },
  });
  return { tenant, conversationId: created.json<{ id: string }>().id };
}

async function send(tenant: TestTenant, conversationId: string, text: string): Promise<void> {
  const response = await t.app.inject({
    method: 'POST',
    url: `/v1/conversations/${conversationId}/messages`,
    headers: actingAs(tenant, 'alice'),
    payload: { text },
  });
  expect(response.statusCode, response.body).toBe(201);
}

/** Waits until `frames` has an event with this text, or fails after `timeoutMs`. */
async function expectDelivered(frames: ReturnType<typeof fakeSocket>['frames'], text: string) {
  const deadline = Date.now() + 3000;
  while (!frames.some((frame) => frame.event?.data.text === text)) {
    if (Date.now() > deadline) throw new Error(`"${text}" never arrived; got ${JSON.stringify(frames)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Lets `n` turns of the event loop pass (each one a round of I/O and immediates). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('a socket registering while the tenant’s last other socket closes', () => {
  it('still receives live events when the close comes before add reaches the feed', async () => {
    const { tenant, conversationId } = await group();
    const alice = new Connection(tenant.id, 'alice', fakeSocket().socket);
    await hub.add(alice, null);

    const bobSocket = fakeSocket();
    const bob = new Connection(tenant.id, 'bob', bobSocket.socket);
    // add() is suspended at its first await (the tenant's feed), bob not yet registered on it.
    const adding = hub.add(bob, null);
    alice.socket.close();
    hub.remove(alice);
    await adding;

    await send(tenant, conversationId, 'hello before the feed');
    await expectDelivered(bobSocket.frames, 'hello before the feed');
    hub.remove(bob);
  });

  it('still receives live events when the close comes while the feed prepares the new socket', async () => {
    const { tenant, conversationId } = await group();
    const alice = new Connection(tenant.id, 'alice', fakeSocket().socket);
    await hub.add(alice, null);

    let open = () => {};
    gate = new Promise((resolve) => (open = resolve));
    const bobSocket = fakeSocket();
    const bob = new Connection(tenant.id, 'bob', bobSocket.socket);
    const adding = hub.add(bob, null);
    // The feed has taken bob's registration and waits on loading his conversations.
    await turns(3);
    alice.socket.close();
    hub.remove(alice);
    gate = null;
    open();
    await adding;

    await send(tenant, conversationId, 'hello while preparing');
    await expectDelivered(bobSocket.frames, 'hello while preparing');
    hub.remove(bob);
  });

  it('starts a fresh feed for the next socket once the registering one closed too', async () => {
    const { tenant, conversationId } = await group();
    const alice = new Connection(tenant.id, 'alice', fakeSocket().socket);
    const adding = hub.add(alice, null);
    hub.remove(alice);
    await adding;
    hub.remove(alice);

    const bobSocket = fakeSocket();
    const bob = new Connection(tenant.id, 'bob', bobSocket.socket);
    await hub.add(bob, null);
    await send(tenant, conversationId, 'after both');
    await expectDelivered(bobSocket.frames, 'after both');
    hub.remove(bob);
  });
});
