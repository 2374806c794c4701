import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { actingAs, createTenant, putUser, type TestTenant } from './helpers/factories.ts';

const t = useTestApp();

type Actor = 'OWNER' | 'ADMIN' | 'MEMBER' | 'VIEWER' | 'non-member' | 'other tenant';
const ACTORS: Actor[] = ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER', 'non-member', 'other tenant'];
/** Users of the main tenant: the four roles, targets of member actions, and one outsider. */
const USERS = [
  'owner',
  'admin',
  'member',
  'viewer',
  'outsider',
  'target-member',
  'target-admin',
  'target-owner',
  'newcomer',
];
const USER_OF: Record<Exclude<Actor, 'other tenant'>, string> = {
  OWNER: 'owner',
  ADMIN: 'admin',
  MEMBER: 'member',
  VIEWER: 'viewer',
  'non-member': 'outsider',
};

interface Case {
  /** What the owner does first, on a fresh group with all four roles and the two targets. */
  prepare?: (conversationId: string) => Promise<void>;
  request: (conversationId: string) => {
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
    url: string;
    payload?: object;
  };
  expected: Record<Actor, number>;
}

const row = (owner: number, admin: number, member: number, viewer: number): Record<Actor, number> => ({
  OWNER: owner,
  ADMIN: admin,
  MEMBER: member,
  VIEWER: viewer,
  'non-member': 404,
  'other tenant': 404,
});

let tenant: TestTenant;
let other: TestTenant;

const asOwner = (method: 'POST' | 'PATCH', url: string, payload?: object) =>
  t.app.inject({ method, url, headers: actingAs(tenant, 'owner'), ...(payload ? { payload } : {}) });

const CASES: Record<string, Case> = {
  'read the conversation': {
    request: (id) => ({ method: 'GET', url: `/v1/conversations/${id}` }),
    expected: row(200, 200, 200, 200),
  },
  'list members': {
    request: (id) => ({ method: 'GET', url: `/v1/conversations/${id}/members` }),
    expected: row(200, 200, 200, 200),
  },
  'change own settings': {
    request: (id) => ({
      method: 'PATCH',
      url: `/v1/conversations/${id}/settings`,
      payload: { muted_until: null },
    }),
    expected: row(200, 200, 200, 200),
  },
  rename: {
    request: (id) => ({ method: 'PATCH', url: `/v1/conversations/${id}`, payload: { name: 'renamed' } }),
    expected: row(200, 200, 403, 403),
  },
  'change the topic': {
    request: (id) => ({ method: 'PATCH', url: `/v1/conversations/${id}`, payload: { topic: 'new topic' } }),
    expected: row(200, 200, 403, 403),
  },
  archive: {
    request: (id) => ({ method: 'POST', url: `/v1/conversations/${id}/archive` }),
    expected: row(200, 200, 403, 403),
  },
  unarchive: {
    prepare: async (id) => {
      await asOwner('POST', `/v1/conversations/${id}/archive`);
    },
    request: (id) => ({ method: 'POST', url: `/v1/conversations/${id}/unarchive` }),
    expected: row(200, 200, 403, 403),
  },
  'delete the conversation': {
    request: (id) => ({ method: 'DELETE', url: `/v1/conversations/${id}` }),
    expected: row(204, 403, 403, 403),
  },
  'add a MEMBER': {
    request: (id) => ({
      method: 'POST',
      url: `/v1/conversations/${id}/members`,
      payload: { user_ids: ['newcomer'] },
    }),
    expected: row(200, 200, 403, 403),
  },
  'add an ADMIN': {
    request: (id) => ({
      method: 'POST',
      url: `/v1/conversations/${id}/members`,
      payload: { user_ids: ['newcomer'], role: 'ADMIN' },
    }),
    expected: row(200, 403, 403, 403),
  },
  'add an OWNER': {
    request: (id) => ({
      method: 'POST',
      url: `/v1/conversations/${id}/members`,
      payload: { user_ids: ['newcomer'], role: 'OWNER' },
    }),
    expected: row(200, 403, 403, 403),
  },
  'remove a MEMBER': {
    request: (id) => ({ method: 'DELETE', url: `/v1/conversations/${id}/members/target-member` }),
    expected: row(204, 204, 403, 403),
  },
  'remove an ADMIN': {
    request: (id) => ({ method: 'DELETE', url: `/v1/conversations/${id}/members/target-admin` }),
    expected: row(204, 403, 403, 403),
  },
  'remove an OWNER': {
    prepare: async (id) => {
      await asOwner('PATCH', `/v1/conversations/${id}/members/target-owner`, { role: 'OWNER' });
    },
    request: (id) => ({ method: 'DELETE', url: `/v1/conversations/${id}/members/target-owner` }),
    expected: row(204, 403, 403, 403),
  },
  'make a MEMBER a VIEWER': {
    request: (id) => ({
      method: 'PATCH',
      url: `/v1/conversations/${id}/members/target-member`,
      payload: { role: 'VIEWER' },
    }),
    expected: row(200, 200, 403, 403),
  },
  'make a MEMBER an ADMIN': {
    request: (id) => ({
      method: 'PATCH',
      url: `/v1/conversations/${id}/members/target-member`,
      payload: { role: 'ADMIN' },
    }),
    expected: row(200, 403, 403, 403),
  },
  'make a MEMBER an OWNER': {
    request: (id) => ({
      method: 'PATCH',
      url: `/v1/conversations/${id}/members/target-member`,
      payload: { role: 'OWNER' },
    }),
    expected: row(200, 403, 403, 403),
  },
  'demote an ADMIN': {
    request: (id) => ({
      method: 'PATCH',
      url: `/v1/conversations/${id}/members/target-admin`,
      payload: { role: 'MEMBER' },
    }),
    expected: row(200, 403, 403, 403),
  },
  // The owner is the last OWNER here, so it must hand over first; everyone else may leave.
  leave: {
    request: (id) => ({ method: 'POST', url: `/v1/conversations/${id}/leave` }),
    expected: row(409, 204, 204, 204),
  },
};

/** A fresh group: owner, one member per role, and the targets of member actions. */
async function freshGroup(): Promise<string> {
  const created = await asOwner('POST', '/v1/conversations', {
    type: 'group',
    name: 'matrix',
    members: ['admin', 'member', 'viewer', 'target-member', 'target-admin', 'target-owner'],
  });
  expect(created.statusCode, created.body).toBe(201);
  const id = created.json<{ id: string }>().id;
  for (const [userId, role] of [
    ['admin', 'ADMIN'],
    ['viewer', 'VIEWER'],
    ['target-admin', 'ADMIN'],
  ] as const) {
    const changed = await asOwner('PATCH', `/v1/conversations/${id}/members/${userId}`, { role });
    expect(changed.statusCode, changed.body).toBe(200);
  }
  return id;
}

beforeAll(async () => {
  tenant = await createTenant(t);
  other = await createTenant(t);
  for (const userId of USERS) await putUser(t, tenant, userId);
  await putUser(t, other, 'owner');
});

describe('the role table, every action × every role', () => {
  for (const [action, spec] of Object.entries(CASES)) {
    it(action, async () => {
      const outcomes: Record<string, number> = {};
      for (const actor of ACTORS) {
        const id = await freshGroup();
        await spec.prepare?.(id);
        const headers =
          actor === 'other tenant' ? actingAs(other, 'owner') : actingAs(tenant, USER_OF[actor]);
        const response = await t.app.inject({ ...spec.request(id), headers });
        outcomes[actor] = response.statusCode;
        if (response.statusCode >= 400) {
          const code = response.json<{ code: string }>().code;
          expect(code).toBe({ 403: 'forbidden', 404: 'not_found', 409: 'conflict' }[response.statusCode]);
        }
      }
      expect(outcomes).toEqual(spec.expected);
    });
  }
});

describe('direct conversations have fixed members', () => {
  it('refuse every member change and conversation edit, for both members', async () => {
    const created = await asOwner('POST', '/v1/conversations', { type: 'direct', members: ['member'] });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string; role: string }>().id;
    expect(created.json<{ role: string }>().role).toBe('MEMBER');
    const attempts = [
      { method: 'POST', url: `/v1/conversations/${id}/members`, payload: { user_ids: ['newcomer'] } },
      { method: 'DELETE', url: `/v1/conversations/${id}/members/member` },
      { method: 'PATCH', url: `/v1/conversations/${id}/members/member`, payload: { role: 'VIEWER' } },
      { method: 'POST', url: `/v1/conversations/${id}/leave` },
      { method: 'PATCH', url: `/v1/conversations/${id}`, payload: { name: 'ours' } },
      { method: 'DELETE', url: `/v1/conversations/${id}` },
    ] as const;
    for (const user of ['owner', 'member']) {
      for (const attempt of attempts) {
        const response = await t.app.inject({ ...attempt, headers: actingAs(tenant, user) });
        expect(response.statusCode, `${user} ${attempt.method} ${attempt.url}`).toBe(403);
      }
    }
    const members = await t.app.inject({
      method: 'GET',
      url: `/v1/conversations/${id}/members`,
      headers: actingAs(tenant, 'member'),
    });
    expect(members.json<{ data: { user_id: string; role: string }[] }>().data).toEqual([
      expect.objectContaining({ user_id: 'member', role: 'MEMBER' }),
      expect.objectContaining({ user_id: 'owner', role: 'MEMBER' }),
    ]);
  });
});

describe('channels', () => {
  it('are visible to and joinable by anyone in the tenant, but not by other tenants', async () => {
    const created = await asOwner('POST', '/v1/conversations', { type: 'channel', name: 'general' });
    const id = created.json<{ id: string }>().id;
    const read = await t.app.inject({
      method: 'GET',
      url: `/v1/conversations/${id}`,
      headers: actingAs(tenant, 'outsider'),
    });
    expect(read.statusCode).toBe(200);
    expect(read.json<{ role: string | null }>().role).toBeNull();
    const edit = await t.app.inject({
      method: 'PATCH',
      url: `/v1/conversations/${id}`,
      headers: actingAs(tenant, 'outsider'),
      payload: { name: 'x' },
    });
    expect(edit.statusCode).toBe(403);
    const join = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/join`,
      headers: actingAs(tenant, 'outsider'),
    });
    expect(join.json()).toMatchObject({ role: 'MEMBER', member_count: 2 });
    const foreign = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/join`,
      headers: actingAs(other, 'owner'),
    });
    expect(foreign.statusCode).toBe(404);
  });

  it('groups cannot be joined by outsiders, who cannot even see them', async () => {
    const id = await freshGroup();
    const join = await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/join`,
      headers: actingAs(tenant, 'outsider'),
    });
    expect(join.statusCode).toBe(404);
  });
});
