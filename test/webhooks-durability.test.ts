import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp } from './helpers/app.ts';
import {
  createServerDatabase,
  createTestDatabase,
  describeWithPostgres,
  SERVER_DATABASE_URL,
} from './helpers/database.ts';
import { createTenantWithUsers, sendText } from './helpers/factories.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';
import { freePort } from './helpers/redis.ts';
import { startWebhookReceiver, type ReceivedWebhook } from './helpers/webhook-receiver.ts';

const ADMIN_TOKEN = 'operator-token-for-the-webhook-tests';
const children: ServerProcess[] = [];
afterAll(() => {
  for (const server of children) server.child.kill('SIGKILL');
});

const textsOf = (received: ReceivedWebhook[]) =>
  received.filter((r) => r.json.type === 'message.created').map((r) => String(r.json.data.data?.text));

/** The texts in the order they first arrived, and whether each arrived at least once. */
const firstArrivals = (received: ReceivedWebhook[]) => [...new Set(textsOf(received))];

describe('webhook deliveries across a crash', () => {
  it('are all made after kill -9, in order, once the receiver is back', async () => {
    const server = SERVER_DATABASE_URL === undefined ? undefined : await createServerDatabase();
    const env = {
      PARLEY_DATA_DIR: tempDataDir(),
      PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
      PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
      ...(server === undefined ? {} : { DATABASE_URL: server.url }),
    };
    try {
      const first = await startServer(env);
      children.push(first);
      const call = async (
        base: string,
        method: string,
        path: string,
        headers: Record<string, string>,
        body?: unknown,
      ) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.text();
        expect(response.status, text).toBeLessThan(300);
        return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      };
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const created = await call(first.url, 'POST', '/v1/admin/tenants', admin, { name: 'durable' });
      const key = { authorization: `Bearer ${(created.api_key as { secret: string }).secret}` };
      for (const user of ['ann', 'bob']) await call(first.url, 'PUT', `/v1/users/${user}`, key, {});
      const ann = { ...key, 'x-parley-user': 'ann' };
      const conversation = await call(first.url, 'POST', '/v1/conversations', ann, {
        type: 'group',
        name: 'durable',
        members: ['bob'],
      });

      // The receiver is down: every first attempt is refused and waits for its retry.
      const port = await freePort();
      await call(first.url, 'POST', '/v1/webhooks', key, {
        url: `http://127.0.0.1:${port}/hooks`,
        events: ['message.created'],
      });
      const sent = Array.from({ length: 20 }, (_, i) => `durable ${i}`);
      for (const text of sent) {
        await call(first.url, 'POST', `/v1/conversations/${String(conversation.id)}/messages`, ann, { text });
      }
      first.child.kill('SIGKILL');
      await first.exited;

      const receiver = await startWebhookReceiver(port);
      try {
        const second = await startServer(env);
        children.push(second);
        // The first retry comes 5 s after a failed attempt; a lane's head goes first, then the rest.
        await receiver.waitFor((received) => firstArrivals(received).length === sent.length, 30_000);
        expect(firstArrivals(receiver.received)).toEqual(sent);
        second.child.kill('SIGKILL');
        await second.exited;
      } finally {
        await receiver.close();
      }
    } finally {
      await server?.drop();
    }
  }, 120_000);
});

describeWithPostgres('webhook deliveries from several processes', () => {
  it('are shared: each event reaches the endpoint once, in order per conversation', async () => {
    const database = await createTestDatabase();
    const receiver = await startWebhookReceiver();
    const timings = { sendEveryMs: 20, sweepEveryMs: 100 };
    const one = await buildTestApp(database, {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: timings,
    });
    const two = await buildTestApp(database, {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: timings,
      adminToken: one.adminToken,
      serverKey: one.serverKey,
    });
    try {
      const tenant = await createTenantWithUsers(one, 'ann', 'bob');
      const headers = { authorization: `Bearer ${tenant.apiKey.secret}` };
      const hook = await one.app.inject({
        method: 'POST',
        url: '/v1/webhooks',
        headers,
        payload: { url: receiver.url, events: ['message.created'] },
      });
      expect(hook.statusCode, hook.body).toBe(201);
      const conversations: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        const response = await one.app.inject({
          method: 'POST',
          url: '/v1/conversations',
          headers: { ...headers, 'x-parley-user': 'ann' },
          payload: { type: 'group', name: `c${i}`, members: ['bob'] },
        });
        conversations.push(response.json<{ id: string }>().id);
      }
      // Sends through both processes, in every conversation.
      const sent = new Map<string, string[]>(conversations.map((id) => [id, []]));
      for (let i = 0; i < 60; i += 1) {
        const conversationId = conversations[i % 3] as string;
        const text = `m${i}`;
        sent.get(conversationId)?.push(text);
        await sendText(i % 2 === 0 ? one : two, tenant, 'ann', conversationId, text);
      }
      await receiver.waitFor((received) => textsOf(received).length >= 60, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      // No event twice (no crash, so no lease ran out), and each conversation's in order.
      expect(textsOf(receiver.received).sort()).toEqual([...sent.values()].flat().sort());
      for (const [conversationId, texts] of sent) {
        const arrived = receiver.received
          .filter((r) => r.json.data.conversation_id === conversationId)
          .map((r) => String(r.json.data.data?.text));
        expect(arrived).toEqual(texts);
      }
    } finally {
      await one.app.close();
      await two.app.close();
      await receiver.close();
      await database.drop();
    }
  }, 60_000);
});
