import { createECDH, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { users } from '../src/db/schema/users.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { useTestApp } from './helpers/app.ts';
import { keyPackageFor, newSignatureKeys } from './helpers/mls.ts';
import { uploadFile } from './helpers/uploads.ts';
import {
  actingAs,
  asUser,
  bearer,
  createTenant,
  expectProblem,
  mintUserToken,
  putUser,
  sendText,
} from './helpers/factories.ts';

const t = useTestApp();
const query = async <T>(text: ReturnType<typeof sql>) => rowsOf<T>(await t.database.db.orm.execute(text));

/** Tables that route credentials to tenants; every other table holding tenant_id must be under RLS. */
const CONTROL_PLANE_TABLES = ['api_keys', 'tenants'];
/**
 * Indexes of background work that a process reads across every tenant (docs/BACKGROUND.md): what is due
 * next, what waits or failed, by time, read only by the SECURITY DEFINER claims, counts and purges below.
 */
const CROSS_TENANT_INDEXES = [
  'webhook_lanes_due_idx',
  'webhook_deliveries_open_idx',
  'push_deliveries_due_idx',
  'push_deliveries_failed_idx',
  'attachments_due_idx',
  'attachments_unbound_idx',
  'storage_removals_due_idx',
  'uploads_expires_idx',
];

describe('row-level security', () => {
  it('runs every query as a role that is not superuser, not BYPASSRLS and owns no table', async () => {
    const [role] = await query<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>(
      sql`SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
    );
    expect(role).toEqual({ name: 'parley_app', rolsuper: false, rolbypassrls: false });
    const owned = await query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user`,
    );
    expect(owned[0]?.n).toBe(0);
  });

  it('puts every table with a tenant_id under a tenant policy, tenant_id leading every key and index', async () => {
    const tables = await query<{ table: string; rls: boolean; policies: number }>(sql`
      SELECT c.relname AS table, c.relrowsecurity AS rls,
             (SELECT count(*)::int FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = 'public') AS policies
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r'
        AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')`);
    const tenantTables = tables.filter((table) => !CONTROL_PLANE_TABLES.includes(table.table));
    expect(tenantTables.map((table) => table.table)).toEqual(
      expect.arrayContaining(['users', 'idempotency_keys']),
    );
    for (const table of tenantTables) {
      expect(table, table.table).toMatchObject({ rls: true, policies: 1 });
    }
    const indexes = await query<{ table: string; index: string; first_column: string }>(sql`
      SELECT t.relname AS table, i.relname AS index, a.attname AS first_column
      FROM pg_index x
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
      WHERE n.nspname = 'public'`);
    const tenantIndexes = indexes.filter(
      (row) =>
        tenantTables.some((table) => table.table === row.table) && !CROSS_TENANT_INDEXES.includes(row.index),
    );
    expect(tenantIndexes.length).toBeGreaterThan(0);
    for (const index of tenantIndexes) {
      expect(index.first_column, `${index.table}.${index.index}`).toBe('tenant_id');
    }
  });

  it('shows no rows to a query run without a tenant, and only its own to a query with one', async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await putUser(t, acme, 'mia');
    await putUser(t, globex, 'noah');

    const unscoped = await t.database.db.orm.select().from(users);
    expect(unscoped).toEqual([]);
    const inAcme = await inTenant(t.database.db.orm, acme.id, (scope) =>
      scope.tx.select({ id: users.id }).from(users),
    );
    expect(inAcme).toEqual([{ id: 'mia' }]);
  });

  it('keeps search, which bypasses row-level security, to the transaction tenant and the member', async () => {
    // Every function that runs as the tables' owner, reviewed: purges of expired rows (and of uploads never
    // sent or never finished), the triggers queueing a deleted attachment's or upload's bytes for removal, search, and the
    // background work's cross-tenant claims, counts and list of followed tenants (ids and counts only),
    // and the webhook sender's bulk read and record of the lanes it claimed (granted to the server's role,
    // called with claimed lanes only).
    const definers = await query<{ name: string }>(sql`
      SELECT proname AS name FROM pg_proc WHERE prosecdef AND pronamespace = 'public'::regnamespace
      ORDER BY proname`);
    expect(definers.map((row) => row.name)).toEqual([
      'parley_attachment_holds',
      'parley_attachment_removed',
      'parley_background_work_stats',
      'parley_claim_attachments',
      'parley_claim_push_deliveries',
      'parley_claim_storage_removals',
      'parley_claim_webhook_lanes',
      'parley_event_consumer_tenants',
      'parley_purge_events',
      'parley_purge_expired_idempotency_keys',
      'parley_purge_expired_uploads',
      'parley_purge_push_deliveries',
      'parley_purge_unsent_attachments',
      'parley_purge_webhook_deliveries',
      'parley_record_webhook_successes',
      'parley_search_messages',
      'parley_upload_holds',
      'parley_upload_removed',
      'parley_webhook_lane_heads',
    ]);
    // The same user id in two tenants, each in a conversation holding the same word.
    const sent: Record<string, string> = {};
    for (const [name, tenant] of [
      ['acme', await createTenant(t)],
      ['globex', await createTenant(t)],
    ] as const) {
      await putUser(t, tenant, 'mia');
      const created = await asUser(t, tenant, 'mia').post('/v1/conversations', { type: 'group', name: 'g' });
      const conversationId = created.json<{ id: string }>().id;
      sent[name] = (await sendText(t, tenant, 'mia', conversationId, `zebracrossing at ${name}`)).id;
      sent[`${name}-tenant`] = tenant.id;
    }
    const search = sql`SELECT id FROM parley_search_messages(
      'mia', 'zebracrossing', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 10, ARRAY['OWNER', 'VIEWER'], NULL)`;
    expect(await query(search), 'without a tenant').toEqual([]);
    const found = await inTenant(t.database.db.orm, sent['acme-tenant'] ?? '', async (scope) =>
      rowsOf<{ id: string }>(await scope.tx.execute(search)),
    );
    expect(found).toEqual([{ id: sent.acme }]);
    const asOther = await inTenant(t.database.db.orm, sent['acme-tenant'] ?? '', async (scope) =>
      rowsOf<{ id: string }>(
        await scope.tx.execute(sql`SELECT id FROM parley_search_messages(
          'noone', 'zebracrossing', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 10, ARRAY['OWNER', 'VIEWER'], NULL)`),
      ),
    );
    expect(asOther, 'a user who is no member').toEqual([]);
  });

  it("refuses to write a row into another tenant's data", async () => {
    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await expect(
      inTenant(t.database.db.orm, acme.id, (scope) =>
        scope.tx.insert(users).values({ tenantId: globex.id, id: 'intruder' }),
      ),
    ).rejects.toThrow();
    const updated = await inTenant(t.database.db.orm, acme.id, (scope) =>
      scope.tx
        .update(users)
        .set({ name: 'hijacked' })
        .where(sql`tenant_id = ${globex.id}`)
        .returning(),
    );
    expect(updated).toEqual([]);
  });
});

const FULL_HISTORY = Buffer.from(JSON.stringify({ prev: '1:1:', at: Date.now() })).toString('base64url');

/**
 * Every tenant route, called by tenant B (as its backend, or as one of its users) with tenant A's ids.
 * Reads and writes of A's things answer 404; routes that create in the caller's own namespace may succeed,
 * or refuse A's user ids as unknown (400), but must leave A's data untouched and unseen.
 */
const CROSS_TENANT_EXPECTATIONS: Record<
  string,
  { status: number; as: 'backend' | 'user'; payload?: object; query?: string }
> = {
  'GET /v1/users/{user_id}': { status: 404, as: 'backend' },
  'DELETE /v1/users/{user_id}': { status: 404, as: 'backend' },
  'GET /v1/users/{user_id}/export': { status: 404, as: 'backend' },
  'PUT /v1/users/{user_id}': { status: 201, as: 'backend', payload: { name: 'Not Olivia' } },
  'POST /v1/users/{user_id}/tokens': { status: 201, as: 'backend' },
  'GET /v1/users': { status: 200, as: 'backend' },
  'GET /v1/me': { status: 200, as: 'user' },
  'GET /v1/conversations': { status: 200, as: 'user' },
  'POST /v1/conversations': { status: 400, as: 'user', payload: { type: 'group', members: ['olivia'] } },
  'GET /v1/channels': { status: 200, as: 'user' },
  'GET /v1/conversations/{conversation_id}': { status: 404, as: 'user' },
  'PATCH /v1/conversations/{conversation_id}': { status: 404, as: 'user', payload: { name: 'taken over' } },
  'DELETE /v1/conversations/{conversation_id}': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/archive': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/unarchive': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/join': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/leave': { status: 404, as: 'user' },
  'GET /v1/conversations/{conversation_id}/members': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/members': {
    status: 404,
    as: 'user',
    payload: { user_ids: ['peter'] },
  },
  'PATCH /v1/conversations/{conversation_id}/members/{user_id}': {
    status: 404,
    as: 'user',
    payload: { role: 'VIEWER' },
  },
  'DELETE /v1/conversations/{conversation_id}/members/{user_id}': { status: 404, as: 'user' },
  'PATCH /v1/conversations/{conversation_id}/settings': {
    status: 404,
    as: 'user',
    payload: { muted_until: null },
  },
  'POST /v1/conversations/{conversation_id}/messages': { status: 404, as: 'user', payload: { text: 'hi' } },
  'GET /v1/conversations/{conversation_id}/messages': { status: 404, as: 'user' },
  'GET /v1/conversations/{conversation_id}/pins': { status: 404, as: 'user' },
  'POST /v1/conversations/{conversation_id}/read': { status: 404, as: 'user' },
  'POST /v1/direct-messages': { status: 400, as: 'user', payload: { to: 'olivia', text: 'hi' } },
  'GET /v1/messages/{message_id}': { status: 404, as: 'user' },
  'PATCH /v1/messages/{message_id}': { status: 404, as: 'user', payload: { text: 'mine now' } },
  'DELETE /v1/messages/{message_id}': { status: 404, as: 'user' },
  'GET /v1/messages/{message_id}/replies': { status: 404, as: 'user' },
  'GET /v1/messages/{message_id}/edits': { status: 404, as: 'user' },
  'PUT /v1/messages/{message_id}/reactions/{emoji}': { status: 404, as: 'user' },
  'DELETE /v1/messages/{message_id}/reactions/{emoji}': { status: 404, as: 'user' },
  'GET /v1/messages/{message_id}/reactions': { status: 404, as: 'user' },
  'POST /v1/messages/{message_id}/pin': { status: 404, as: 'user' },
  'DELETE /v1/messages/{message_id}/pin': { status: 404, as: 'user' },
  'GET /v1/messages/{message_id}/receipts': { status: 404, as: 'user' },
  'GET /v1/unread': { status: 200, as: 'user' },
  // A cursor from before anything happened: the whole history the caller may see, none of it A's.
  'GET /v1/sync': { status: 200, as: 'user', query: `since=${FULL_HISTORY}` },
  'GET /v1/search/messages': { status: 200, as: 'user', query: 'q=secrets' },
  'GET /v1/me/push-subscriptions': { status: 200, as: 'user' },
  'POST /v1/me/push-subscriptions': { status: 400, as: 'user', payload: { endpoint: 'nope', keys: {} } },
  'DELETE /v1/me/push-subscriptions/{subscription_id}': { status: 404, as: 'user' },
  'GET /v1/push/vapid-public-key': { status: 200, as: 'user' },
  'GET /v1/me/devices': { status: 200, as: 'user' },
  'POST /v1/me/devices': { status: 201, as: 'user', payload: { name: 'peter’s phone' } },
  'DELETE /v1/me/devices/{device_id}': { status: 404, as: 'user' },
  'POST /v1/me/devices/{device_id}/key-packages': { status: 404, as: 'user', payload: { key_packages: [] } },
  // Olivia of A is nobody B's users share a conversation with, and has no devices in B to claim.
  'GET /v1/users/{user_id}/devices': { status: 404, as: 'user' },
  'POST /v1/users/{user_id}/key-packages/claim': { status: 200, as: 'user' },
  'POST /v1/attachments': { status: 415, as: 'user', payload: { file: 'not multipart' } },
  'GET /v1/attachments/{attachment_id}': { status: 404, as: 'user' },
  'DELETE /v1/attachments/{attachment_id}': { status: 404, as: 'user' },
  // Direct uploads need S3; this app stores on its disk.
  'POST /v1/attachments/presign': { status: 409, as: 'user', payload: { name: 'a.txt', size: 10 } },
  'POST /v1/attachments/{attachment_id}/complete': { status: 404, as: 'user' },
  // Discovery, and a creation without Tus-Resumable: nothing of A's either way.
  'OPTIONS /v1/uploads': { status: 204, as: 'user' },
  'POST /v1/uploads': { status: 412, as: 'user' },
  'HEAD /v1/uploads/{upload_id}': { status: 404, as: 'user' },
  'PATCH /v1/uploads/{upload_id}': { status: 404, as: 'user' },
  'DELETE /v1/uploads/{upload_id}': { status: 404, as: 'user' },
  // No credential but the link itself: one that is not Parley's opens nothing, whoever asks.
  'GET /v1/files/{token}': { status: 403, as: 'user' },
  'GET /v1/webhooks': { status: 200, as: 'backend' },
  'POST /v1/webhooks': {
    status: 201,
    as: 'backend',
    payload: { url: 'https://8.8.8.8/globex-hooks', events: ['message.created'] },
  },
  'GET /v1/webhooks/{webhook_id}': { status: 404, as: 'backend' },
  'PATCH /v1/webhooks/{webhook_id}': { status: 404, as: 'backend', payload: { enabled: false } },
  'DELETE /v1/webhooks/{webhook_id}': { status: 404, as: 'backend' },
  'POST /v1/webhooks/{webhook_id}/rotate-secret': { status: 404, as: 'backend' },
  'POST /v1/webhooks/{webhook_id}/test': { status: 404, as: 'backend' },
  'GET /v1/webhooks/{webhook_id}/deliveries': { status: 404, as: 'backend' },
  'POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry': { status: 404, as: 'backend' },
  'POST /v1/webhooks/{webhook_id}/replay': {
    status: 404,
    as: 'backend',
    payload: { since: '2026-01-01T00:00:00.000Z' },
  },
};

describe("another tenant's ids", () => {
  it('answer 404 (or act only within the caller tenant) on every tenant route', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const tenantRoutes = Object.entries(document.paths)
      .filter(([path]) => path.startsWith('/v1/') && !path.startsWith('/v1/admin/'))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect([...tenantRoutes].sort(), 'a new route needs a cross-tenant expectation here').toEqual(
      Object.keys(CROSS_TENANT_EXPECTATIONS).sort(),
    );

    const acme = await createTenant(t);
    const globex = await createTenant(t);
    await putUser(t, acme, 'olivia', { name: 'Olivia of Acme' });
    await putUser(t, globex, 'peter');
    const channel = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(acme, 'olivia'),
      payload: { type: 'channel', name: 'Acme secrets' },
    });
    const channelId = channel.json<{ id: string }>().id;
    const uploaded = await uploadFile(t, acme, 'olivia', 'acme-plan.txt', Buffer.from('the plan'));
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    const attachmentId = uploaded.json<{ id: string }>().id;
    const sent = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/messages`,
      headers: actingAs(acme, 'olivia'),
      payload: { text: 'Acme secrets: the launch plan', attachment_ids: [attachmentId] },
    });
    expect(sent.statusCode, sent.body).toBe(201);
    const messageId = sent.json<{ id: string }>().id;
    const resumable = await t.app.inject({
      method: 'POST',
      url: '/v1/uploads',
      headers: {
        ...actingAs(acme, 'olivia'),
        'tus-resumable': '1.0.0',
        'upload-length': '100',
        'upload-metadata': `filename ${Buffer.from('acme-upload.txt').toString('base64')}`,
      },
    });
    expect(resumable.statusCode, resumable.body).toBe(201);
    const uploadId = String(resumable.headers.location).split('/').at(-1) ?? '';
    const subscribed = await t.app.inject({
      method: 'POST',
      url: '/v1/me/push-subscriptions',
      headers: actingAs(acme, 'olivia'),
      payload: {
        endpoint: 'https://8.8.8.8/acme-push',
        keys: {
          p256dh: createECDH('prime256v1').generateKeys().toString('base64url'),
          auth: randomBytes(16).toString('base64url'),
        },
      },
    });
    expect(subscribed.statusCode, subscribed.body).toBe(201);
    const subscriptionId = subscribed.json<{ id: string }>().id;
    const webhook = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: bearer(acme.apiKey.secret),
      payload: { url: 'https://8.8.8.8/acme-hooks', events: ['*'] },
    });
    expect(webhook.statusCode, webhook.body).toBe(201);
    const webhookId = webhook.json<{ id: string }>().id;
    const device = await t.app.inject({
      method: 'POST',
      url: '/v1/me/devices',
      headers: actingAs(acme, 'olivia'),
      payload: { name: 'acme-laptop' },
    });
    expect(device.statusCode, device.body).toBe(201);
    const deviceId = device.json<{ id: string }>().id;
    const keyPackage = await keyPackageFor(`${deviceId}:olivia`, await newSignatureKeys());
    const stocked = await t.app.inject({
      method: 'POST',
      url: `/v1/me/devices/${deviceId}/key-packages`,
      headers: actingAs(acme, 'olivia'),
      payload: { key_packages: [keyPackage] },
    });
    expect(stocked.statusCode, stocked.body).toBe(200);
    const globexAsUser = await mintUserToken(t, globex, 'peter');

    // Reads and deletes first: the creating routes then make a same-named user in the caller's tenant.
    const creatingLast = [...tenantRoutes].sort(
      (a, b) =>
        Number(CROSS_TENANT_EXPECTATIONS[a]?.status === 201) -
        Number(CROSS_TENANT_EXPECTATIONS[b]?.status === 201),
    );
    for (const route of creatingLast) {
      const [method, path] = route.split(' ') as [
        'GET' | 'HEAD' | 'OPTIONS' | 'PUT' | 'POST' | 'PATCH' | 'DELETE',
        string,
      ];
      const expected = CROSS_TENANT_EXPECTATIONS[route];
      if (!expected) throw new Error(`no expectation for ${route}`);
      const url =
        path
          .replace('{user_id}', 'olivia')
          .replace('{conversation_id}', channelId)
          .replace('{message_id}', messageId)
          .replace('{emoji}', encodeURIComponent('👍'))
          .replace('{subscription_id}', subscriptionId)
          .replace('{webhook_id}', webhookId)
          .replace('{delivery_id}', messageId)
          .replace('{attachment_id}', attachmentId)
          .replace('{upload_id}', uploadId)
          .replace('{device_id}', deviceId)
          .replace('{token}', 'not-a-link') + (expected.query === undefined ? '' : `?${expected.query}`);
      const headers = expected.as === 'user' ? bearer(globexAsUser) : bearer(globex.apiKey.secret);
      const response = await t.app.inject({
        method,
        url,
        headers,
        ...(expected.payload ? { payload: expected.payload } : {}),
      });
      // A HEAD answer has no body: its status says it.
      if (expected.status === 404 && method !== 'HEAD') expectProblem(response, 404, 'not_found');
      else expect(response.statusCode, `${route}: ${response.body}`).toBe(expected.status);
      expect(response.body, route).not.toContain('Olivia of Acme');
      expect(response.body, route).not.toContain('Acme secrets');
      expect(response.body, route).not.toContain(channelId);
      expect(response.body, route).not.toContain(messageId);
      expect(response.body, route).not.toContain(subscriptionId);
      expect(response.body, route).not.toContain(webhookId);
      expect(response.body, route).not.toContain(attachmentId);
      expect(response.body, route).not.toContain(deviceId);
      expect(response.body, route).not.toContain(keyPackage);
      expect(JSON.stringify(response.headers), route).not.toContain(uploadId);
      expect(response.body, route).not.toContain('acme-');
    }

    const stillThere = await t.app.inject({
      method: 'GET',
      url: `/v1/conversations/${channelId}`,
      headers: actingAs(acme, 'olivia'),
    });
    expect(stillThere.json()).toMatchObject({ name: 'Acme secrets', member_count: 1 });
    const original = await t.app.inject({
      method: 'GET',
      url: '/v1/users/olivia',
      headers: bearer(acme.apiKey.secret),
    });
    expect(original.json()).toMatchObject({ id: 'olivia', name: 'Olivia of Acme' });
  });
});
