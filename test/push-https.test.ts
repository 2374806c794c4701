import { createECDH } from 'node:crypto';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { createServerDatabase, SERVER_DATABASE_URL } from './helpers/database.ts';
import { startServer, tempDataDir, type ServerProcess } from './helpers/processes.ts';
import {
  readVapidAuthorization,
  startPushReceiver,
  type PushReceiver,
  type TestSubscriber,
} from './helpers/push-receiver.ts';
import { makeTestCa, type TestCa } from './helpers/test-ca.ts';

const ADMIN_TOKEN = 'operator-token-for-the-push-https-tests';
const SUBJECT = 'mailto:push-ops@example.com';
const children: ServerProcess[] = [];
const drops: (() => Promise<void>)[] = [];

/** A Parley server process of its own (its data directory, or its PostgreSQL database), as an operator runs it. */
async function startParley(env: Record<string, string>) {
  const dataDir = tempDataDir();
  const database = SERVER_DATABASE_URL === undefined ? undefined : await createServerDatabase();
  if (database !== undefined) drops.push(database.drop);
  const server = await startServer({
    PARLEY_DATA_DIR: dataDir,
    PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
    PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
    PARLEY_VAPID_SUBJECT: SUBJECT,
    ...(database === undefined ? {} : { DATABASE_URL: database.url }),
    ...env,
  });
  children.push(server);
  const call = async (method: string, route: string, headers: Record<string, string>, body?: unknown) => {
    const response = await fetch(`${server.url}${route}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    expect(response.status, text).toBeLessThan(300);
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  };
  const metric = async (line: RegExp) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const match = text.split('\n').find((row) => line.test(row));
    return match === undefined ? 0 : Number(match.split(' ').at(-1));
  };
  const waitForMetric = async (line: RegExp, value: number) => {
    const deadline = Date.now() + 20_000;
    while ((await metric(line)) !== value) {
      if (Date.now() > deadline)
        throw new Error(`${String(line)} never reached ${value}:\n${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /** A tenant with ann and bob, bob subscribed to `subscriber`, and a direct message from ann to bob. */
  const pushToBob = async (subscriber: TestSubscriber, text: string) => {
    const tenant = await call(
      'POST',
      '/v1/admin/tenants',
      { authorization: `Bearer ${ADMIN_TOKEN}` },
      {
        name: 'push over https',
      },
    );
    const key = { authorization: `Bearer ${(tenant.api_key as { secret: string }).secret}` };
    for (const user of ['ann', 'bob']) await call('PUT', `/v1/users/${user}`, key, {});
    await call(
      'POST',
      '/v1/me/push-subscriptions',
      { ...key, 'x-parley-user': 'bob' },
      {
        endpoint: subscriber.endpoint,
        keys: subscriber.keys,
      },
    );
    const message = await call(
      'POST',
      '/v1/direct-messages',
      { ...key, 'x-parley-user': 'ann' },
      {
        to: 'bob',
        text,
      },
    );
    const vapid = await call('GET', '/v1/push/vapid-public-key', key);
    return { tenantId: (tenant.tenant as { id: string }).id, message, publicKey: String(vapid.public_key) };
  };
  /** Stops the server (SIGTERM, as an operator would) and reads the tenant's pushes from its database. */
  const stopAndReadPushes = async (tenantId: string) => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const db = await openDatabase(
      database === undefined ? { dataDir: path.join(dataDir, 'pglite') } : { databaseUrl: database.url },
    );
    try {
      return await inTenant(db.orm, tenantId, async (scope) =>
        rowsOf<{ status: string; attempts: number; last_status_code: number | null; last_error: string }>(
          await scope.tx.execute(
            sql`SELECT status, attempts, last_status_code, last_error FROM push_deliveries`,
          ),
        ),
      );
    } finally {
      await db.close();
    }
  };
  return { server, pushToBob, waitForMetric, stopAndReadPushes };
}

/**
 * Web Push to a push service over HTTPS, from a real server process: the push service's certificate is
 * issued by a private CA that the server trusts only because the operator said so (NODE_EXTRA_CA_CERTS,
 * read by Node at process start), and the push service reads the push as a browser would (RFC 8291).
 */
describe('Web Push over HTTPS', () => {
  let ca: TestCa;
  let receiver: PushReceiver;

  beforeAll(async () => {
    ca = makeTestCa();
    receiver = await startPushReceiver({ tls: ca });
  });
  afterAll(async () => {
    for (const server of children) server.child.kill('SIGKILL');
    await receiver.close();
    for (const drop of drops) await drop();
  });

  it('delivers a push the browser can decrypt, signed with the VAPID key, to a push service the operator trusts', async () => {
    expect(receiver.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const parley = await startParley({ NODE_EXTRA_CA_CERTS: ca.caFile });
    const subscriber = receiver.subscriber();
    const { tenantId, message, publicKey } = await parley.pushToBob(subscriber, 'over TLS, @bob');
    await receiver.waitFor(() => subscriber.received().length === 1, 20_000);
    const [push] = subscriber.received();
    if (push === undefined) throw new Error('no push');

    expect(subscriber.open(push)).toEqual({
      type: 'message.created',
      conversation_id: message.conversation_id,
      message_id: message.id,
      sender_id: 'ann',
      preview: 'over TLS, @bob',
    });
    expect(push.headers['content-encoding']).toBe('aes128gcm');

    const vapid = readVapidAuthorization(String(push.headers.authorization), publicKey);
    expect(vapid.valid).toBe(true);
    expect(vapid.header).toMatchObject({ typ: 'JWT', alg: 'ES256' });
    // The audience is the push service's origin; it expires within a day (RFC 8292 §2).
    expect(vapid.claims.aud).toBe(receiver.url);
    expect(vapid.claims.sub).toBe(SUBJECT);
    const expires = Number(vapid.claims.exp) * 1000;
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000);
    // The check is a real one: another key does not verify the same signature.
    const otherKey = createECDH('prime256v1').generateKeys().toString('base64url');
    expect(readVapidAuthorization(String(push.headers.authorization), otherKey).valid).toBe(false);
    // Recorded as sent (just after the push service answered).
    await parley.waitForMetric(/^parley_push_attempts_total\{outcome="sent"\}/, 1);

    // Sent: nothing is left to send.
    expect(await parley.stopAndReadPushes(tenantId)).toEqual([]);
  }, 120_000);

  it('records a TLS failure, and delivers nothing, when the operator did not make the server trust the CA', async () => {
    const parley = await startParley({});
    const subscriber = receiver.subscriber();
    const handshakesBefore = receiver.tlsFailures.length;
    const { tenantId } = await parley.pushToBob(subscriber, 'not over an untrusted TLS');
    // The attempt reached the push service and was given up at the handshake: waits for its retry.
    await parley.waitForMetric(/^parley_push_attempts_total\{outcome="retrying"\}/, 1);
    expect(receiver.tlsFailures.length).toBeGreaterThan(handshakesBefore);
    expect(subscriber.received()).toEqual([]);

    const pushes = await parley.stopAndReadPushes(tenantId);
    expect(pushes).toEqual([
      {
        status: 'pending',
        attempts: 1,
        last_status_code: null,
        last_error: 'tls: the TLS handshake failed',
      },
    ]);
    expect(subscriber.received()).toEqual([]);
  }, 120_000);
});
