import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import {
  actingAs,
  asUser,
  collectPages,
  createTenant,
  createTenantWithUsers,
  expectProblem,
  putUser,
  type TestTenant,
} from './helpers/factories.ts';

const t = useTestApp();

interface ConversationBody {
  id: string;
  type: string;
  role: string | null;
  member_count: number;
  muted: boolean;
  archived_at: string | null;
}

const tenantWithUsers = (...userIds: string[]) => createTenantWithUsers(t, ...userIds);

const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

async function create(tenant: TestTenant, userId: string, payload: object): Promise<ConversationBody> {
  const response = await as(tenant, userId).post('/v1/conversations', payload);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<ConversationBody>();
}

describe('creating conversations', () => {
  it('makes the creator OWNER of a group and its invitees MEMBERs', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol');
    const group = await create(tenant, 'alice', {
      type: 'group',
      name: 'design',
      topic: 'pixels',
      members: ['bob', 'carol'],
      metadata: { team: 7 },
    });
    expect(group).toMatchObject({
      type: 'group',
      role: 'OWNER',
      member_count: 3,
      unread_count: 0,
      mention_count: 0,
      last_message: null,
      muted: false,
    });
    const members = await as(tenant, 'bob').get(`/v1/conversations/${group.id}/members`);
    expect(members.json<{ data: unknown[] }>().data).toEqual([
      expect.objectContaining({ user_id: 'alice', role: 'OWNER' }),
      expect.objectContaining({ user_id: 'bob', role: 'MEMBER' }),
      expect.objectContaining({ user_id: 'carol', role: 'MEMBER' }),
    ]);
    // Naming oneself among the members changes nothing.
    const self = await create(tenant, 'alice', { type: 'group', members: ['alice', 'bob'] });
    expect(self.member_count).toBe(2);
  });

  it('returns the existing direct conversation of a pair, from either side', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const first = await create(tenant, 'alice', { type: 'direct', members: ['bob'] });
    expect(first).toMatchObject({ type: 'direct', role: 'MEMBER', member_count: 2 });
    const again = await as(tenant, 'alice').post('/v1/conversations', { type: 'direct', members: ['bob'] });
    const reverse = await as(tenant, 'bob').post('/v1/conversations', { type: 'direct', members: ['alice'] });
    expect(again.statusCode).toBe(200);
    expect(reverse.statusCode).toBe(200);
    expect(again.json<ConversationBody>().id).toBe(first.id);
    expect(reverse.json<ConversationBody>().id).toBe(first.id);
  });

  it('creates exactly one direct conversation when both sides create it at the same moment', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const attempts = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        index % 2 === 0
          ? as(tenant, 'alice').post('/v1/conversations', { type: 'direct', members: ['bob'] })
          : as(tenant, 'bob').post('/v1/conversations', { type: 'direct', members: ['alice'] }),
      ),
    );
    const ids = new Set(attempts.map((response) => response.json<ConversationBody>().id));
    expect(ids.size).toBe(1);
    expect(attempts.filter((response) => response.statusCode === 201)).toHaveLength(1);
    expect(attempts.filter((response) => response.statusCode === 200)).toHaveLength(9);
    const list = await as(tenant, 'alice').get('/v1/conversations?type=direct');
    expect(list.json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('rejects bad input with the field path, and writes nothing', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const cases: [object, string][] = [
      [{ type: 'group', members: ['bob', 'ghost'] }, '/body/members/1'],
      [{ type: 'group', members: ['bob', 'bob'] }, '/body/members'],
      [{ type: 'group', name: '' }, '/body/name'],
      [{ type: 'group', name: 'x'.repeat(201) }, '/body/name'],
      [{ type: 'forum', name: 'x' }, '/body/type'],
      [{ name: 'x' }, '/body/type'],
      [{ type: 'channel' }, '/body/name'],
      [{ type: 'group', members: ['not valid!'] }, '/body/members/0'],
      [{ type: 'direct', members: ['alice'] }, '/body/members'],
      [{ type: 'direct', members: ['bob', 'alice', 'carol'] }, '/body/members'],
      [{ type: 'direct', members: [] }, '/body/members'],
      [{ type: 'direct', members: ['ghost'] }, '/body/members/0'],
      [{ type: 'direct', members: ['bob'], name: 'us' }, '/body/name'],
      [{ type: 'group', metadata: { blob: 'x'.repeat(9000) } }, '/body/metadata'],
      [{ type: 'group', color: 'red' }, '/body/color'],
    ];
    for (const [payload, path] of cases) {
      const response = await as(tenant, 'alice').post('/v1/conversations', payload);
      const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
        errors: { path: string }[];
      };
      expect(
        problem.errors.map((error) => error.path),
        JSON.stringify(payload),
      ).toContain(path);
    }
    const list = await as(tenant, 'alice').get('/v1/conversations');
    expect(list.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it('is for users: the tenant backend acts through X-Parley-User', async () => {
    const tenant = await tenantWithUsers('alice');
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: { authorization: `Bearer ${tenant.apiKey.secret}` },
      payload: { type: 'group' },
    });
    expectProblem(response, 403, 'forbidden');
  });
});

describe('listing', () => {
  it("lists the caller's conversations, most recent first, keyset paged and filtered", async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const made: string[] = [];
    for (const type of ['group', 'channel', 'group', 'direct', 'channel']) {
      const body = type === 'direct' ? { type, members: ['bob'] } : { type, name: `${type}-${made.length}` };
      made.push((await create(tenant, 'alice', body)).id);
    }
    await create(tenant, 'bob', { type: 'group', name: 'not alice' });

    const all = await collectPages(t, '/v1/conversations?limit=2', actingAs(tenant, 'alice'));
    expect(all.pages).toBe(3);
    expect(all.items.map((item) => item.id)).toEqual([...made].reverse());

    const channels = await collectPages(t, '/v1/conversations?type=channel', actingAs(tenant, 'alice'));
    expect(channels.items.map((item) => item.id)).toEqual([made[4], made[1]]);

    await as(tenant, 'alice').post(`/v1/conversations/${made[0]}/archive`);
    const archived = await as(tenant, 'alice').get('/v1/conversations?archived=true');
    expect(archived.json<{ data: ConversationBody[] }>().data.map((item) => item.id)).toEqual([made[0]]);
    const active = await as(tenant, 'alice').get('/v1/conversations?archived=false');
    expect(active.json<{ data: ConversationBody[] }>().data).toHaveLength(4);

    const badType = await as(tenant, 'alice').get('/v1/conversations?type=forum');
    expectProblem(badType, 400, 'validation_failed');
    const badCursor = await as(tenant, 'alice').get('/v1/conversations?cursor=abc');
    expectProblem(badCursor, 400, 'validation_failed');
  });

  it('shows each listed conversation as GET /v1/conversations/{id} does: counts, last message, settings', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group', name: 'g', members: ['bob'] });
    const channel = await create(tenant, 'alice', { type: 'channel', name: 'c' });
    const direct = await create(tenant, 'alice', { type: 'direct', members: ['bob'] });
    const quiet = await create(tenant, 'alice', { type: 'group', name: 'no messages yet' });
    expect((await as(tenant, 'bob').post(`/v1/conversations/${channel.id}/join`)).statusCode).toBe(200);
    const sendAs = async (userId: string, conversationId: string, payload: object) => {
      const response = await as(tenant, userId).post(`/v1/conversations/${conversationId}/messages`, payload);
      expect(response.statusCode, response.body).toBe(201);
      return response.json<{ id: string }>();
    };
    const hello = await sendAs('bob', group.id, { text: 'hello @alice' });
    await sendAs('bob', group.id, { text: 'in a thread', thread_root_id: hello.id });
    await as(tenant, 'alice').put(`/v1/messages/${hello.id}/reactions/:wave:`);
    await as(tenant, 'bob').put(`/v1/messages/${hello.id}/reactions/:wave:`);
    await as(tenant, 'bob').put(`/v1/messages/${hello.id}/reactions/:eyes:`);
    await sendAs('bob', channel.id, { text: 'channel news for @alice' });
    await sendAs('bob', channel.id, { text: 'more news' });
    await sendAs('alice', direct.id, { text: 'mine' });
    const muted = await as(tenant, 'alice').patch(`/v1/conversations/${direct.id}/settings`, {
      muted_until: '2999-01-01T00:00:00.000Z',
    });
    expect(muted.statusCode, muted.body).toBe(200);

    const listed = (await as(tenant, 'alice').get('/v1/conversations')).json<{
      data: (ConversationBody & Record<string, unknown>)[];
    }>().data;
    expect(listed.map((item) => item.id)).toEqual([direct.id, channel.id, group.id, quiet.id]);
    for (const item of listed) {
      const alone = await as(tenant, 'alice').get(`/v1/conversations/${item.id}`);
      expect(item).toEqual(alone.json());
    }
    expect(listed.map((item) => [item.unread_count, item.mention_count])).toEqual([
      [0, 0],
      [2, 1],
      [1, 1],
      [0, 0],
    ]);
    expect(listed[2]?.last_message).toMatchObject({
      id: hello.id,
      reactions: [
        { emoji: ':wave:', count: 2, me: true },
        { emoji: ':eyes:', count: 1, me: false },
      ],
    });
    expect(listed[3]?.last_message).toBeNull();
    expect(listed[0]).toMatchObject({ muted: true, last_message: { text: 'mine' } });
  });

  it("discovers the tenant's channels by name prefix, with the caller's role", async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const general = await create(tenant, 'alice', { type: 'channel', name: 'General' });
    const random = await create(tenant, 'alice', { type: 'channel', name: 'random' });
    await create(tenant, 'alice', { type: 'group', name: 'general-private' });

    const found = await collectPages(t, '/v1/channels?limit=1', actingAs(tenant, 'bob'));
    expect(found.items.map((item) => item.id)).toEqual([random.id, general.id]);
    expect(found.items.map((item) => item.role)).toEqual([null, null]);

    const byName = await as(tenant, 'bob').get('/v1/channels?query=gen');
    expect(byName.json<{ data: ConversationBody[] }>().data.map((item) => item.id)).toEqual([general.id]);
    const asMember = await as(tenant, 'alice').get('/v1/channels?query=GEN');
    expect(asMember.json<{ data: ConversationBody[] }>().data[0]?.role).toBe('OWNER');
  });

  it('pages members by user id', async () => {
    const tenant = await tenantWithUsers('alice', 'u1', 'u2', 'u3', 'u4');
    const group = await create(tenant, 'alice', { type: 'group', members: ['u4', 'u2', 'u1', 'u3'] });
    const members = await collectPages(
      t,
      `/v1/conversations/${group.id}/members?limit=2`,
      actingAs(tenant, 'u3'),
    );
    expect(members.items.map((item) => item.user_id)).toEqual(['alice', 'u1', 'u2', 'u3', 'u4']);
    expect(members.pages).toBe(3);
  });
});

describe('changing conversations', () => {
  it('renames, changes the topic and metadata, and clears them', async () => {
    const tenant = await tenantWithUsers('alice');
    const group = await create(tenant, 'alice', { type: 'group', name: 'old' });
    const renamed = await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, {
      name: 'new',
      topic: 'hello',
      metadata: { a: 1 },
    });
    expect(renamed.json()).toMatchObject({ name: 'new', topic: 'hello', metadata: { a: 1 } });
    const cleared = await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, { topic: null });
    expect(cleared.json()).toMatchObject({ name: 'new', topic: null });
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, {}),
      400,
      'validation_failed',
    );
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, { name: '' }),
      400,
      'validation_failed',
    );
    const channel = await create(tenant, 'alice', { type: 'channel', name: 'chan' });
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${channel.id}`, { name: null }),
      400,
      'validation_failed',
    );
  });

  it('makes an archived conversation read-only until it is unarchived', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group', name: 'g' });
    const archived = await as(tenant, 'alice').post(`/v1/conversations/${group.id}/archive`);
    expect(archived.json<ConversationBody>().archived_at).not.toBeNull();
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, { name: 'x' }),
      409,
      'conflict',
    );
    expectProblem(
      await as(tenant, 'alice').post(`/v1/conversations/${group.id}/members`, { user_ids: ['bob'] }),
      409,
      'conflict',
    );
    expect((await as(tenant, 'alice').get(`/v1/conversations/${group.id}`)).statusCode).toBe(200);
    const unarchived = await as(tenant, 'alice').post(`/v1/conversations/${group.id}/unarchive`);
    expect(unarchived.json<ConversationBody>().archived_at).toBeNull();
    expect((await as(tenant, 'alice').patch(`/v1/conversations/${group.id}`, { name: 'x' })).statusCode).toBe(
      200,
    );
  });

  it('soft-deletes: gone from lists, 404 afterwards', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group', members: ['bob'] });
    expect((await as(tenant, 'alice').delete(`/v1/conversations/${group.id}`)).statusCode).toBe(204);
    expectProblem(await as(tenant, 'bob').get(`/v1/conversations/${group.id}`), 404, 'not_found');
    expectProblem(await as(tenant, 'alice').delete(`/v1/conversations/${group.id}`), 404, 'not_found');
    expect((await as(tenant, 'bob').get('/v1/conversations')).json<{ data: unknown[] }>().data).toEqual([]);
  });

  it("keeps each member's mute setting to that member", async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group', members: ['bob'] });
    const muted = await as(tenant, 'bob').patch(`/v1/conversations/${group.id}/settings`, {
      muted_until: '2099-01-01T00:00:00.000Z',
    });
    expect(muted.json()).toMatchObject({ muted: true, muted_until: '2099-01-01T00:00:00.000Z' });
    expect((await as(tenant, 'alice').get(`/v1/conversations/${group.id}`)).json()).toMatchObject({
      muted: false,
    });
    const past = await as(tenant, 'bob').patch(`/v1/conversations/${group.id}/settings`, {
      muted_until: '2000-01-01T00:00:00.000Z',
    });
    expect(past.json()).toMatchObject({ muted: false });
    const unmuted = await as(tenant, 'bob').patch(`/v1/conversations/${group.id}/settings`, {
      muted_until: null,
    });
    expect(unmuted.json()).toMatchObject({ muted: false, muted_until: null });
    expectProblem(
      await as(tenant, 'bob').patch(`/v1/conversations/${group.id}/settings`, { muted_until: 'soon' }),
      400,
      'validation_failed',
    );
  });
});

describe('membership', () => {
  it('adds several members at once, keeps existing ones, and validates every id', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave');
    const group = await create(tenant, 'alice', { type: 'group', members: ['bob'] });
    const added = await as(tenant, 'alice').post(`/v1/conversations/${group.id}/members`, {
      user_ids: ['bob', 'carol', 'dave'],
      role: 'VIEWER',
    });
    expect(added.json<{ data: unknown[] }>().data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ user_id: 'bob', role: 'MEMBER' }),
        expect.objectContaining({ user_id: 'carol', role: 'VIEWER' }),
        expect.objectContaining({ user_id: 'dave', role: 'VIEWER' }),
      ]),
    );
    expect(
      (await as(tenant, 'alice').get(`/v1/conversations/${group.id}`)).json<ConversationBody>().member_count,
    ).toBe(4);

    for (const [payload, path] of [
      [{ user_ids: ['ghost'] }, '/body/user_ids/0'],
      [{ user_ids: [] }, '/body/user_ids'],
      [{ user_ids: ['carol', 'carol'] }, '/body/user_ids'],
      [{ user_ids: ['carol'], role: 'SUPERUSER' }, '/body/role'],
    ] as const) {
      const response = await as(tenant, 'alice').post(`/v1/conversations/${group.id}/members`, payload);
      const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
        errors: { path: string }[];
      };
      expect(problem.errors.map((error) => error.path)).toContain(path);
    }
    expect(
      (await as(tenant, 'alice').get(`/v1/conversations/${group.id}`)).json<ConversationBody>().member_count,
    ).toBe(4);
  });

  it('lets the last OWNER leave only after handing over', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group', members: ['bob'] });
    expectProblem(await as(tenant, 'alice').post(`/v1/conversations/${group.id}/leave`), 409, 'conflict');
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${group.id}/members/alice`, { role: 'ADMIN' }),
      409,
      'conflict',
    );
    expect(
      (await as(tenant, 'alice').patch(`/v1/conversations/${group.id}/members/bob`, { role: 'OWNER' }))
        .statusCode,
    ).toBe(200);
    expect((await as(tenant, 'alice').post(`/v1/conversations/${group.id}/leave`)).statusCode).toBe(204);
    expectProblem(await as(tenant, 'alice').get(`/v1/conversations/${group.id}`), 404, 'not_found');
    expect(
      (await as(tenant, 'bob').get(`/v1/conversations/${group.id}`)).json<ConversationBody>().member_count,
    ).toBe(1);
    expectProblem(
      await as(tenant, 'bob').delete(`/v1/conversations/${group.id}/members/bob`),
      409,
      'conflict',
    );
  });

  it('answers 404 for members that are not members', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await create(tenant, 'alice', { type: 'group' });
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/conversations/${group.id}/members/bob`, { role: 'VIEWER' }),
      404,
      'not_found',
    );
    expectProblem(
      await as(tenant, 'alice').delete(`/v1/conversations/${group.id}/members/bob`),
      404,
      'not_found',
    );
    const channel = await create(tenant, 'alice', { type: 'channel', name: 'c' });
    expectProblem(await as(tenant, 'bob').post(`/v1/conversations/${channel.id}/leave`), 404, 'not_found');
    expectProblem(
      await as(tenant, 'bob').patch(`/v1/conversations/${channel.id}/settings`, { muted_until: null }),
      404,
      'not_found',
    );
  });

  it('keeps the member count exact under racing joins and leaves', async () => {
    const tenant = await createTenant(t);
    const users = Array.from({ length: 24 }, (_, index) => `racer-${index}`);
    for (const userId of ['alice', ...users]) await putUser(t, tenant, userId);
    const channel = await create(tenant, 'alice', { type: 'channel', name: 'race' });
    const join = (userId: string) => as(tenant, userId).post(`/v1/conversations/${channel.id}/join`);
    const leave = (userId: string) => as(tenant, userId).post(`/v1/conversations/${channel.id}/leave`);
    // Everyone joins twice at once; then half leave while the other half join again.
    const joined = await Promise.all([...users, ...users].map(join));
    expect(joined.every((response) => response.statusCode === 200)).toBe(true);
    const churn = await Promise.all(
      users.map((userId, index) => (index % 2 === 0 ? leave(userId) : join(userId))),
    );
    expect(churn.every((response) => response.statusCode < 300)).toBe(true);

    const conversation = (
      await as(tenant, 'alice').get(`/v1/conversations/${channel.id}`)
    ).json<ConversationBody>();
    const members = await collectPages(
      t,
      `/v1/conversations/${channel.id}/members?limit=200`,
      actingAs(tenant, 'alice'),
    );
    expect(members.items).toHaveLength(1 + users.length / 2);
    expect(conversation.member_count).toBe(members.items.length);
  });
});

describe('erasing a user', () => {
  it('removes their memberships and hands OWNER on where they were the last', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave');
    const group = await create(tenant, 'alice', { type: 'group', members: ['bob', 'carol', 'dave'] });
    await as(tenant, 'alice').patch(`/v1/conversations/${group.id}/members/carol`, { role: 'ADMIN' });
    const direct = await create(tenant, 'alice', { type: 'direct', members: ['bob'] });

    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/alice',
      headers: { authorization: `Bearer ${tenant.apiKey.secret}` },
    });
    expect(erased.statusCode).toBe(204);

    const members = await collectPages(t, `/v1/conversations/${group.id}/members`, actingAs(tenant, 'bob'));
    expect(members.items.map((item) => [item.user_id, item.role])).toEqual([
      ['bob', 'MEMBER'],
      ['carol', 'OWNER'],
      ['dave', 'MEMBER'],
    ]);
    expect(
      (await as(tenant, 'bob').get(`/v1/conversations/${group.id}`)).json<ConversationBody>().member_count,
    ).toBe(3);
    expect(
      (await as(tenant, 'bob').get(`/v1/conversations/${direct.id}`)).json<ConversationBody>().member_count,
    ).toBe(1);
  });
});

describe('erasure edge cases', () => {
  it('lets a re-created user open a new direct conversation with the same partner', async () => {
    const tenant = await tenantWithUsers('alice', 'bob_1', 'bobX1');
    const old = await create(tenant, 'alice', { type: 'direct', members: ['bob_1'] });
    const unrelated = await create(tenant, 'alice', { type: 'direct', members: ['bobX1'] });
    const backend = { authorization: `Bearer ${tenant.apiKey.secret}` };
    expect(
      (await t.app.inject({ method: 'DELETE', url: '/v1/users/bob_1', headers: backend })).statusCode,
    ).toBe(204);
    await putUser(t, tenant, 'bob_1');
    const fresh = await as(tenant, 'bob_1').post('/v1/conversations', { type: 'direct', members: ['alice'] });
    expect(fresh.statusCode, fresh.body).toBe(201);
    expect(fresh.json<ConversationBody>().id).not.toBe(old.id);
    expect(fresh.json<ConversationBody>().role).toBe('MEMBER');
    // A user id that matches only as a LIKE pattern (bob_1 ~ bobX1) is not released.
    const again = await as(tenant, 'alice').post('/v1/conversations', { type: 'direct', members: ['bobX1'] });
    expect(again.statusCode).toBe(200);
    expect(again.json<ConversationBody>().id).toBe(unrelated.id);
  });

  it('hands OWNER to a VIEWER when no one else is left', async () => {
    const tenant = await tenantWithUsers('alice', 'vera');
    const group = await create(tenant, 'alice', { type: 'group', members: ['vera'] });
    await as(tenant, 'alice').patch(`/v1/conversations/${group.id}/members/vera`, { role: 'VIEWER' });
    const backend = { authorization: `Bearer ${tenant.apiKey.secret}` };
    expect(
      (await t.app.inject({ method: 'DELETE', url: '/v1/users/alice', headers: backend })).statusCode,
    ).toBe(204);
    expect(
      (await as(tenant, 'vera').get(`/v1/conversations/${group.id}`)).json<ConversationBody>().role,
    ).toBe('OWNER');
  });
});
