import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { actingAs, collectPages, expectProblem } from './helpers/factories.ts';
import { readHelpers, type Problem } from './helpers/reads.ts';

// Read state: marking read, what a send does to it, the unread rule, and read receipts.

const t = useTestApp();
const {
  tenantWithUsers,
  as,
  createGroup,
  send,
  deleteMessage,
  markRead,
  unreadOf,
  conversationsOf,
  stateIn,
} = readHelpers(t);

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
