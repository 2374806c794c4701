import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { asUser, bearer, createTenantWithUsers, sendText } from './helpers/factories.ts';
import { ROOT } from './helpers/processes.ts';
import { freePort } from './helpers/redis.ts';

/** The receiver docs/WEBHOOKS.md gives tenants, run as they would run it, against a real server. */
describe('examples/webhook-receiver.ts', () => {
  let t: TestApp | undefined;
  afterAll(async () => {
    await t?.app.close();
    await t?.database.drop();
  });

  it('verifies and prints each delivery once, and refuses a forged one', async () => {
    t = await buildTestApp(await createTestDatabase(), {
      outbound: { allowPrivateNetworks: true },
      backgroundWork: { sendEveryMs: 50, sweepEveryMs: 200 },
    });
    const app = t;
    const tenant = await createTenantWithUsers(app, 'ann', 'bob');
    const port = await freePort();
    const created = await app.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(tenant.apiKey.secret),
      payload: { url: `http://127.0.0.1:${port}/`, events: ['message.created'] },
    });
    const { secret } = created.json<{ secret: string }>();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/webhook-receiver.ts'], {
      cwd: ROOT,
      env: { ...process.env, PARLEY_WEBHOOK_SECRET: secret, PORT: String(port) },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!stdout.includes('listening')) {
        if (Date.now() > deadline) throw new Error(`the example did not start: ${stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const conversation = await asUser(app, tenant, 'ann').post('/v1/conversations', {
        type: 'group',
        name: 'example',
        members: ['bob'],
      });
      await sendText(app, tenant, 'ann', conversation.json<{ id: string }>().id, 'hello example');
      while (!stdout.includes('hello example')) {
        if (Date.now() > deadline) throw new Error(`the example printed nothing: ${stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const printed = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { type: string; data: { data: { text: string } } });
      expect(printed).toEqual([expect.objectContaining({ type: 'message.created' })]);
      expect(printed[0]?.data.data.text).toBe('hello example');

      const forged = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: {
          'webhook-id': 'msg_1',
          'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
          'webhook-signature': 'v1,bm90IGEgc2lnbmF0dXJl',
        },
        body: JSON.stringify({ type: 'message.created', timestamp: new Date().toISOString(), data: {} }),
      });
      expect(forged.status).toBe(401);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
