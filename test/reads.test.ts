import fc from 'fast-check';
import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { Unread } from '../src/modules/reads/reads.schemas.ts';
import {
  actingAs,
  asUser,
  collectPages,
  createTenantWithUsers,
  expectProblem,
  sendText,
  type MessageBody,
  type TestTenant,
} from './helpers/factories.ts';

const t = useTestApp();

interface ReadState {
  conversation_id: string;
  last_read_seq: number;
  unread_count: number;
  mention_count: number;
}

interface UnreadBody {
  total_unread: number;
  total_mentions: number;
  conversations: ReadState[];
}

interface ConversationBody {
  id: string;
  role: string | null;
  unread_count: number;
  mention_count: number;
  last_message: MessageBody | null;
}

interface Problem {
  errors?: { path: string; message: string }[];
}

const tenantWithUsers = (...userIds: string[]) => createTenantWithUsers(t, ...userIds);

const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

async function createGroup(tenant: TestTenant, owner: string, members: string[]): Promise<string> {
  const response = await as(tenant, owner).post('/v1/conversations', { type: 'group', members });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>().id;
}

const send = (
  tenant: TestTenant,
  userId: string,
  conversationId: string,
  text: string,
  threadRootId?: string,
) => sendText(t, tenant, userId, conversationId, text, threadRootId);

async function deleteMessage(tenant: TestTenant, userId: string, messageId: string): Promise<void> {
  const response = await as(tenant, userId).delete(`/v1/messages/${messageId}`);
  expect(response.statusCode, response.body).toBe(204);
}

async function markRead(
  tenant: TestTenant,
  userId: string,
  conversationId: string,
  payload?: object,
): Promise<ReadState> {
  const response = await as(tenant, userId).post(`/v1/conversations/${conversationId}/read`, payload);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<ReadState>();
}

/**
 * GET /v1/unread, checked against its contract on every call: the database builds the body's JSON text and
 * the server passes it on, so nothing else holds it to the response schema, the order (most unread first,
 * ties by conversation id), the totals, or the rule that only conversations with something unread appear.
 */
async function unreadOf(tenant: TestTenant, userId: string): Promise<UnreadBody> {
  const response = await as(tenant, userId).get('/v1/unread');
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  const body = response.json<UnreadBody>();
  expect([...Value.Errors(Unread, body)]).toEqual([]);
  expect(Object.keys(body)).toEqual(['total_unread', 'total_mentions', 'conversations']);
  const sorted = [...body.conversations].sort(
    (a, b) =>
      b.unread_count - a.unread_count ||
      (a.conversation_id < b.conversation_id ? -1 : a.conversation_id > b.conversation_id ? 1 : 0),
  );
  expect(body.conversations).toEqual(sorted);
  expect(body.conversations.every((row) => row.unread_count > 0 || row.mention_count > 0)).toBe(true);
  expect(body.total_unread).toBe(body.conversations.reduce((sum, row) => sum + row.unread_count, 0));
  expect(body.total_mentions).toBe(body.conversations.reduce((sum, row) => sum + row.mention_count, 0));
  return body;
}

async function conversationsOf(tenant: TestTenant, userId: string): Promise<ConversationBody[]> {
  const response = await as(tenant, userId).get('/v1/conversations?limit=200');
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ data: ConversationBody[] }>().data;
}

/** The caller's unread state of one conversation as GET /v1/unread reports it (zeros when it is not listed). */
async function stateIn(tenant: TestTenant, userId: string, conversationId: string) {
  const unread = await unreadOf(tenant, userId);
  const row = unread.conversations.find((item) => item.conversation_id === conversationId);
  return { unread_count: row?.unread_count ?? 0, mention_count: row?.mention_count ?? 0 };
}

describe('marking read', () => {
  it('moves the watermark to the latest, or to a seq, never back and never past the end', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await createGroup(tenant, 'alice', ['bob']);
    for (let index = 1; index <= 5; index++) await send(tenant, 'bob', group, `message ${index}`);
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 5, mention_count: 0 });

    expect(await markRead(tenant, 'alice', group, { seq: 2 })).toEqual({
      conversation_id: group,
      last_read_seq: 2,
      unread_count: 3,
      mention_count: 0,
    });
    // A lower seq (or 0) never moves it back.
    expect(await markRead(tenant, 'alice', group, { seq: 1 })).toMatchObject({
      last_read_seq: 2,
      unread_count: 3,
    });
    expect(await markRead(tenant, 'alice', group, { seq: 0 })).toMatchObject({
      last_read_seq: 2,
      unread_count: 3,
    });
    // An empty body is the latest, like no body at all.
    expect(await markRead(tenant, 'alice', group, {})).toEqual({
      conversation_id: group,
      last_read_seq: 5,
      unread_count: 0,
      mention_count: 0,
    });
    expect((await unreadOf(tenant, 'alice')).total_unread).toBe(0);

    await send(tenant, 'bob', group, 'six');
    await send(tenant, 'bob', group, 'seven');
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 2, mention_count: 0 });
    // No body at all: the latest.
    expect(await markRead(tenant, 'alice', group)).toMatchObject({ last_read_seq: 7, unread_count: 0 });

    await send(tenant, 'bob', group, 'eight');
    // Beyond the end: clamped to the last seq, so later messages still count as unread.
    expect(await markRead(tenant, 'alice', group, { seq: 1000 })).toMatchObject({
      last_read_seq: 8,
      unread_count: 0,
    });
    await send(tenant, 'bob', group, 'nine');
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 1, mention_count: 0 });
    const listed = (await unreadOf(tenant, 'alice')).conversations;
    expect(listed).toEqual([{ conversation_id: group, last_read_seq: 8, unread_count: 1, mention_count: 0 }]);
  });

  it('marks an empty conversation read at 0', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await createGroup(tenant, 'alice', ['bob']);
    expect(await markRead(tenant, 'bob', group, { seq: 3 })).toEqual({
      conversation_id: group,
      last_read_seq: 0,
      unread_count: 0,
      mention_count: 0,
    });
    await send(tenant, 'alice', group, 'first');
    expect(await stateIn(tenant, 'bob', group)).toEqual({ unread_count: 1, mention_count: 0 });
  });

  it('answers 404 to anyone but a member, and lets a VIEWER mark read', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'vic', 'dave');
    const other = await tenantWithUsers('alice');
    const group = await createGroup(tenant, 'alice', ['bob']);
    const added = await as(tenant, 'alice').post(`/v1/conversations/${group}/members`, {
      user_ids: ['vic'],
      role: 'VIEWER',
    });
    expect(added.statusCode, added.body).toBe(200);
    const channel = await as(tenant, 'alice').post('/v1/conversations', { type: 'channel', name: 'open' });
    expect(channel.statusCode, channel.body).toBe(201);
    const channelId = channel.json<{ id: string }>().id;
    await send(tenant, 'bob', group, 'hello @vic');
    await send(tenant, 'alice', channelId, 'hello channel');

    expectProblem(await as(tenant, 'dave').post(`/v1/conversations/${group}/read`), 404, 'not_found');
    // A channel the caller could join is still not theirs to mark read: it may see the channel (403) or
    // not be told about a read state it does not have (404); either way nothing is written.
    const inChannel = await as(tenant, 'dave').post(`/v1/conversations/${channelId}/read`);
    expect([403, 404], inChannel.body).toContain(inChannel.statusCode);
    expectProblem(inChannel, inChannel.statusCode, inChannel.statusCode === 403 ? 'forbidden' : 'not_found');
    expectProblem(await as(other, 'alice').post(`/v1/conversations/${group}/read`), 404, 'not_found');
    expectProblem(
      await as(tenant, 'alice').post('/v1/conversations/019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83/read'),
      404,
      'not_found',
    );
    expect((await unreadOf(tenant, 'dave')).conversations).toEqual([]);

    expect(await stateIn(tenant, 'vic', group)).toEqual({ unread_count: 1, mention_count: 1 });
    expect(await markRead(tenant, 'vic', group)).toEqual({
      conversation_id: group,
      last_read_seq: 1,
      unread_count: 0,
      mention_count: 0,
    });
  });

  it('rejects bad input with the field path, and changes nothing', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await createGroup(tenant, 'alice', ['bob']);
    for (let index = 1; index <= 3; index++) await send(tenant, 'bob', group, `message ${index}`);
    await markRead(tenant, 'alice', group, { seq: 1 });

    const cases: [object, string][] = [
      [{ seq: -1 }, '/body/seq'],
      [{ seq: 'x' }, '/body/seq'],
      [{ seq: '3' }, '/body/seq'],
      [{ seq: 2.5 }, '/body/seq'],
      [{ seq: null }, '/body/seq'],
      [{ seq: 1e300 }, '/body/seq'],
      [{ seq: 3, until: 4 }, '/body/until'],
    ];
    for (const [payload, path] of cases) {
      const response = await as(tenant, 'alice').post(`/v1/conversations/${group}/read`, payload);
      const problem = expectProblem(response, 400, 'validation_failed') as Problem;
      expect(
        (problem.errors ?? []).map((error) => error.path),
        JSON.stringify(payload),
      ).toContain(path);
    }
    const badId = await as(tenant, 'alice').post('/v1/conversations/not-a-uuid/read');
    const problem = expectProblem(badId, 400, 'validation_failed') as Problem;
    expect((problem.errors ?? []).map((error) => error.path)).toContain('/params/conversation_id');

    expect((await unreadOf(tenant, 'alice')).conversations).toEqual([
      { conversation_id: group, last_read_seq: 1, unread_count: 2, mention_count: 0 },
    ]);
  });
});

describe('sending', () => {
  it('marks the conversation read for the sender, so their own unread stays 0', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await createGroup(tenant, 'alice', ['bob']);
    for (let index = 1; index <= 3; index++) await send(tenant, 'bob', group, `from bob ${index}`);
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 3, mention_count: 0 });

    await send(tenant, 'alice', group, 'caught up @bob');
    expect(await unreadOf(tenant, 'alice')).toEqual({
      total_unread: 0,
      total_mentions: 0,
      conversations: [],
    });
    // Bob's own three never counted for him; alice's one does.
    expect((await unreadOf(tenant, 'bob')).conversations).toEqual([
      { conversation_id: group, last_read_seq: 3, unread_count: 1, mention_count: 1 },
    ]);
    const listed = (await conversationsOf(tenant, 'alice')).find((item) => item.id === group);
    expect(listed).toMatchObject({ unread_count: 0, mention_count: 0 });
  });
});

describe('the unread rule', () => {
  it("counts other people's non-deleted main-timeline messages after the watermark, and mentions among them", async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave');
    const group = await createGroup(tenant, 'alice', ['bob', 'carol']);
    const first = await send(tenant, 'bob', group, 'one'); // 1: counts
    await send(tenant, 'carol', group, 'hey @alice'); // 2: counts, mentions
    await send(tenant, 'bob', group, 'in a thread @alice', first.id); // 3: a reply, never counts
    const doomed = await send(tenant, 'carol', group, 'soon gone @alice'); // 4: deleted below
    await send(tenant, 'bob', group, '@alice, ping'); // 5: counts, mentions
    await send(tenant, 'bob', group, 'mail alice@example.com'); // 6: counts, not a mention
    await send(tenant, 'carol', group, 'hi @dave and @alicex'); // 7: counts, mentions a non-member only
    await deleteMessage(tenant, 'carol', doomed.id);

    const expected = (unread: number, mentions: number, lastRead: number) => ({
      total_unread: unread,
      total_mentions: mentions,
      conversations:
        unread + mentions === 0
          ? []
          : [
              {
                conversation_id: group,
                last_read_seq: lastRead,
                unread_count: unread,
                mention_count: mentions,
              },
            ],
    });

    expect(await unreadOf(tenant, 'alice')).toEqual(expected(5, 2, 0));
    expect((await conversationsOf(tenant, 'alice'))[0]).toMatchObject({
      id: group,
      unread_count: 5,
      mention_count: 2,
    });
    // Bob read up to his last send (6): carol's 7 is his only unread.
    expect(await unreadOf(tenant, 'bob')).toEqual(expected(1, 0, 6));
    // Carol sent last: nothing unread, though her deleted message 4 is after nobody's watermark.
    expect(await unreadOf(tenant, 'carol')).toEqual(expected(0, 0, 7));

    expect(await markRead(tenant, 'alice', group, { seq: 2 })).toEqual({
      conversation_id: group,
      last_read_seq: 2,
      unread_count: 3,
      mention_count: 1,
    });
    expect(await unreadOf(tenant, 'alice')).toEqual(expected(3, 1, 2));
    // Reading up to the thread reply or the deleted message counts nothing twice.
    expect(await markRead(tenant, 'alice', group, { seq: 4 })).toMatchObject({
      unread_count: 3,
      mention_count: 1,
    });
    expect(await markRead(tenant, 'alice', group, { seq: 5 })).toMatchObject({
      unread_count: 2,
      mention_count: 0,
    });
    expect(await unreadOf(tenant, 'alice')).toEqual(expected(2, 0, 5));
  });

  it('follows edits that add or remove a mention', async () => {
    const tenant = await tenantWithUsers('alice', 'bob');
    const group = await createGroup(tenant, 'alice', ['bob']);
    const plain = await send(tenant, 'bob', group, 'hello');
    const mentioning = await send(tenant, 'bob', group, 'hello @alice');
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 2, mention_count: 1 });

    const edit = async (messageId: string, text: string) => {
      const response = await as(tenant, 'bob').patch(`/v1/messages/${messageId}`, { text });
      expect(response.statusCode, response.body).toBe(200);
    };
    await edit(plain.id, 'hello @alice, again');
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 2, mention_count: 2 });
    await edit(mentioning.id, 'hello everyone');
    await edit(plain.id, 'hello');
    expect(await stateIn(tenant, 'alice', group)).toEqual({ unread_count: 2, mention_count: 0 });
  });

  it("stops counting an erased user's messages and a deleted conversation", async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol');
    const group = await createGroup(tenant, 'alice', ['bob', 'carol']);
    const doomed = await createGroup(tenant, 'carol', ['alice']);
    await send(tenant, 'bob', group, 'from bob @alice');
    await send(tenant, 'carol', group, 'from carol');
    await send(tenant, 'bob', group, 'bob again');
    await send(tenant, 'carol', doomed, 'soon gone @alice');
    expect(await unreadOf(tenant, 'alice')).toMatchObject({ total_unread: 4, total_mentions: 2 });

    const erased = await t.app.inject({
      method: 'DELETE',
      url: '/v1/users/bob',
      headers: { authorization: `Bearer ${tenant.apiKey.secret}` },
    });
    expect(erased.statusCode, erased.body).toBe(204);
    const removed = await as(tenant, 'carol').delete(`/v1/conversations/${doomed}`);
    expect(removed.statusCode, removed.body).toBe(204);

    expect(await unreadOf(tenant, 'alice')).toEqual({
      total_unread: 1,
      total_mentions: 0,
      conversations: [{ conversation_id: group, last_read_seq: 0, unread_count: 1, mention_count: 0 }],
    });
    const listed = await conversationsOf(tenant, 'alice');
    expect(listed.map((item) => [item.id, item.unread_count, item.mention_count])).toEqual([[group, 1, 0]]);
  });

  it('lists only conversations with something unread, agreeing with the conversation list', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol');
    const busy = await createGroup(tenant, 'alice', ['bob', 'carol']);
    const caughtUp = await createGroup(tenant, 'alice', ['bob']);
    const empty = await createGroup(tenant, 'alice', ['bob']);
    const direct = await as(tenant, 'bob').post('/v1/conversations', { type: 'direct', members: ['alice'] });
    expect(direct.statusCode, direct.body).toBe(201);
    const directId = direct.json<{ id: string }>().id;
    const notMine = await createGroup(tenant, 'bob', ['carol']);

    const root = await send(tenant, 'bob', busy, 'first @alice');
    await send(tenant, 'carol', busy, 'second');
    const latestMain = await send(tenant, 'carol', busy, 'third');
    await send(tenant, 'bob', busy, 'a reply after the latest main message', root.id);
    await send(tenant, 'bob', caughtUp, 'seen @alice');
    await markRead(tenant, 'alice', caughtUp);
    await send(tenant, 'bob', directId, 'psst @alice');
    await send(tenant, 'bob', directId, 'hello?');
    await send(tenant, 'bob', notMine, 'not for alice @alice');

    const unread = await unreadOf(tenant, 'alice');
    expect(unread).toEqual({
      total_unread: 5,
      total_mentions: 2,
      conversations: [
        { conversation_id: busy, last_read_seq: 0, unread_count: 3, mention_count: 1 },
        { conversation_id: directId, last_read_seq: 0, unread_count: 2, mention_count: 1 },
      ],
    });

    const listed = await conversationsOf(tenant, 'alice');
    expect(listed.map((item) => item.id).sort()).toEqual([busy, caughtUp, empty, directId].sort());
    for (const item of listed) {
      const row = unread.conversations.find((entry) => entry.conversation_id === item.id);
      expect({ unread_count: item.unread_count, mention_count: item.mention_count }, item.id).toEqual({
        unread_count: row?.unread_count ?? 0,
        mention_count: row?.mention_count ?? 0,
      });
    }
    const byId = new Map(listed.map((item) => [item.id, item]));
    // The latest main-timeline message, not the later thread reply.
    expect(byId.get(busy)?.last_message).toMatchObject({ id: latestMain.id, seq: 3, text: 'third' });
    expect(byId.get(caughtUp)?.last_message).toMatchObject({ text: 'seen @alice', seq: 1 });
    expect(byId.get(directId)?.last_message).toMatchObject({ text: 'hello?', seq: 2 });
    expect(byId.get(empty)?.last_message).toBeNull();
  });
});

describe('receipts', () => {
  it('lists the members whose watermark has reached a message, paged by user id', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave', 'erin', 'outsider');
    const group = await createGroup(tenant, 'alice', ['bob', 'carol', 'dave', 'erin']);
    const first = await send(tenant, 'alice', group, 'one'); // alice read 1
    const second = await send(tenant, 'bob', group, 'two'); // bob read 2
    await send(tenant, 'bob', group, 'a reply', first.id); // bob read 3
    await markRead(tenant, 'carol', group, { seq: 1 });
    await markRead(tenant, 'erin', group); // erin read 3

    const receipts = async (messageId: string, query = '') => {
      const response = await as(tenant, 'dave').get(`/v1/messages/${messageId}/receipts${query}`);
      expect(response.statusCode, response.body).toBe(200);
      return response.json<{
        data: { user_id: string; last_read_seq: number }[];
        next_cursor: string | null;
      }>();
    };
    expect(await receipts(first.id)).toEqual({
      data: [
        { user_id: 'alice', last_read_seq: 1 },
        { user_id: 'bob', last_read_seq: 3 },
        { user_id: 'carol', last_read_seq: 1 },
        { user_id: 'erin', last_read_seq: 3 },
      ],
      next_cursor: null,
    });
    expect((await receipts(second.id)).data.map((row) => row.user_id)).toEqual(['bob', 'erin']);

    await markRead(tenant, 'dave', group, { seq: 2 });
    await markRead(tenant, 'carol', group, { seq: 2 });
    const paged = await collectPages(
      t,
      `/v1/messages/${second.id}/receipts?limit=2`,
      actingAs(tenant, 'dave'),
    );
    expect(paged.pages).toBe(2);
    expect(paged.items.map((row) => row.user_id)).toEqual(['bob', 'carol', 'dave', 'erin']);

    expectProblem(await as(tenant, 'outsider').get(`/v1/messages/${first.id}/receipts`), 404, 'not_found');
    const forged = await as(tenant, 'dave').get(`/v1/messages/${first.id}/receipts?cursor=!!!`);
    const problem = expectProblem(forged, 400, 'validation_failed') as Problem;
    expect((problem.errors ?? []).map((error) => error.path)).toContain('/querystring/cursor');
    expectProblem(
      await as(tenant, 'dave').get('/v1/messages/019a9b70-1c2d-7e3f-8a4b-5c6d7e8f9a0b/receipts'),
      404,
      'not_found',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Property: for any history, alice's counts equal a brute-force count over a model of that history.

type Sender = 'alice' | 'bob' | 'carol';

type Action =
  | { kind: 'send'; sender: Sender; mention: boolean }
  | { kind: 'reply'; sender: Sender; root: number; mention: boolean }
  | { kind: 'delete'; target: number }
  | { kind: 'edit'; target: number; mention: boolean }
  | { kind: 'erase' }
  | { kind: 'read'; at: number | 'latest' | 'beyond' };

interface ModelMessage {
  id: string;
  seq: number;
  sender: Sender;
  isReply: boolean;
  deleted: boolean;
  mentionsAlice: boolean;
}

// Alice sends less often than the others, so histories leave her something unread.
const senderArb = fc.constantFrom<Sender>('bob', 'carol', 'bob', 'carol', 'alice');
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('send' as const), sender: senderArb, mention: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('reply' as const),
      sender: senderArb,
      root: fc.nat({ max: 100 }),
      mention: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), target: fc.nat({ max: 100 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('edit' as const),
      target: fc.nat({ max: 100 }),
      mention: fc.boolean(),
    }),
  },
  // Erasing carol makes her messages tombstones and removes her; she sends nothing after.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('erase' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      at: fc.oneof(fc.nat({ max: 100 }), fc.constant('latest' as const), fc.constant('beyond' as const)),
    }),
  },
);

// Groups (and direct conversations) read counters that triggers keep; channels count by scanning. Both must
// agree with the model.
describe.each(['group', 'channel'] as const)('unread counts in a %s, property-based', (type) => {
  it('equal a brute-force count over any history of sends, replies, edits, deletes, erasures and reads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 25, size: 'max' }), async (actions) => {
        const tenant = await tenantWithUsers('alice', 'bob', 'carol', 'dave');
        const created = await as(tenant, 'alice').post('/v1/conversations', {
          type,
          name: 'property',
          members: ['bob', 'carol'],
        });
        expect(created.statusCode, created.body).toBe(201);
        const group = created.json<{ id: string }>().id;
        let carolErased = false;
        const model: ModelMessage[] = [];
        let watermark = 0;
        const lastSeq = () => model.at(-1)?.seq ?? 0;

        const expectedCounts = () => {
          const unread = model.filter(
            (message) =>
              !message.isReply && !message.deleted && message.sender !== 'alice' && message.seq > watermark,
          );
          return {
            unread_count: unread.length,
            mention_count: unread.filter((message) => message.mentionsAlice).length,
          };
        };

        for (const action of actions) {
          switch (action.kind) {
            case 'send':
            case 'reply': {
              if (action.sender === 'carol' && carolErased) break;
              let root: ModelMessage | undefined;
              if (action.kind === 'reply') {
                const roots = model.filter((message) => !message.isReply && !message.deleted);
                root = roots[action.root % Math.max(roots.length, 1)];
                if (root === undefined) break;
              }
              const text = `${action.kind} ${model.length + 1}${action.mention ? ' cc @alice' : ''}`;
              const sent = await send(tenant, action.sender, group, text, root?.id);
              expect(sent.seq).toBe(lastSeq() + 1);
              expect(sent.mentions).toEqual(action.mention ? ['alice'] : []);
              model.push({
                id: sent.id,
                seq: sent.seq,
                sender: action.sender,
                isReply: root !== undefined,
                deleted: false,
                mentionsAlice: action.mention,
              });
              if (action.sender === 'alice') watermark = Math.max(watermark, sent.seq);
              break;
            }
            case 'delete': {
              const live = model.filter((message) => !message.deleted);
              const target = live[action.target % Math.max(live.length, 1)];
              if (target === undefined) break;
              await deleteMessage(tenant, target.sender, target.id);
              target.deleted = true;
              break;
            }
            case 'edit': {
              const live = model.filter((message) => !message.deleted);
              const target = live[action.target % Math.max(live.length, 1)];
              if (target === undefined) break;
              const edited = await as(tenant, target.sender).patch(`/v1/messages/${target.id}`, {
                text: `edited${action.mention ? ' cc @alice' : ''}`,
              });
              expect(edited.statusCode, edited.body).toBe(200);
              target.mentionsAlice = action.mention;
              break;
            }
            case 'erase': {
              if (carolErased) break;
              const erased = await t.app.inject({
                method: 'DELETE',
                url: '/v1/users/carol',
                headers: { authorization: `Bearer ${tenant.apiKey.secret}` },
              });
              expect(erased.statusCode, erased.body).toBe(204);
              carolErased = true;
              for (const message of model) if (message.sender === 'carol') message.deleted = true;
              break;
            }
            case 'read': {
              let target: number;
              let payload: object | undefined;
              if (action.at === 'latest') {
                target = lastSeq();
              } else if (action.at === 'beyond') {
                target = lastSeq();
                payload = { seq: lastSeq() + 5 };
              } else {
                target = action.at % (lastSeq() + 1);
                payload = { seq: target };
              }
              watermark = Math.max(watermark, target);
              const state = await markRead(tenant, 'alice', group, payload);
              expect(state).toEqual({
                conversation_id: group,
                last_read_seq: watermark,
                ...expectedCounts(),
              });
              break;
            }
          }
          // After every step, not only at the end: GET /v1/unread agrees with the model.
          const now = expectedCounts();
          const listed = (await unreadOf(tenant, 'alice')).conversations;
          const hasUnread = now.unread_count > 0 || now.mention_count > 0;
          expect(listed, JSON.stringify(action)).toEqual(
            hasUnread ? [{ conversation_id: group, last_read_seq: watermark, ...now }] : [],
          );
        }

        const counts = expectedCounts();
        const hasUnread = counts.unread_count > 0 || counts.mention_count > 0;
        expect(await unreadOf(tenant, 'alice')).toEqual({
          total_unread: counts.unread_count,
          total_mentions: counts.mention_count,
          conversations: hasUnread ? [{ conversation_id: group, last_read_seq: watermark, ...counts }] : [],
        });
        const [listed, ...others] = await conversationsOf(tenant, 'alice');
        expect(others).toEqual([]);
        expect(listed).toMatchObject({ id: group, ...counts });
        const latestMain = model.filter((message) => !message.isReply).at(-1);
        expect(listed?.last_message?.seq ?? null).toBe(latestMain?.seq ?? null);
        expect(listed?.last_message?.id ?? null).toBe(latestMain?.id ?? null);

        // A member who arrives now has every live main-timeline message unread, none mentioning him.
        const joined =
          type === 'channel'
            ? await as(tenant, 'dave').post(`/v1/conversations/${group}/join`)
            : await as(tenant, 'alice').post(`/v1/conversations/${group}/members`, { user_ids: ['dave'] });
        expect(joined.statusCode, joined.body).toBeLessThan(300);
        const liveMain = model.filter((message) => !message.isReply && !message.deleted).length;
        expect(await stateIn(tenant, 'dave', group)).toEqual({ unread_count: liveMain, mention_count: 0 });
      }),
      { numRuns: 20, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false },
    );
  }, 90_000);
});
