import { describe, expect, it } from 'vitest';
import { newId } from '../src/ids.ts';
import { tenantDb } from '../src/db/tenant-scope.ts';
import { sendMessageRows, type SendValues } from '../src/modules/messages/message-sends.repository.ts';
import { sendValuesOf } from '../src/modules/messages/messages.service.ts';
import { useTestApp } from './helpers/app.ts';
import { SERVER_DATABASE_URL } from './helpers/database.ts';
import {
  asUser,
  createTenant,
  expectProblem,
  putUser,
  type MessageBody,
  type TestTenant,
} from './helpers/factories.ts';

const t = useTestApp();

interface HistoryBody {
  data: MessageBody[];
  has_more_before: boolean;
  has_more_after: boolean;
}

const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

/** A tenant with users and a group owned by alice with everyone else as MEMBER. */
async function groupWith(...others: string[]) {
  const tenant = await createTenant(t);
  for (const userId of ['alice', ...others]) await putUser(t, tenant, userId);
  const created = await as(tenant, 'alice').post('/v1/conversations', {
    type: 'group',
    name: 'g',
    members: others,
  });
  expect(created.statusCode, created.body).toBe(201);
  return { tenant, id: created.json<{ id: string }>().id };
}

async function send(
  tenant: TestTenant,
  userId: string,
  conversationId: string,
  payload: object,
): Promise<MessageBody> {
  const response = await as(tenant, userId).post(`/v1/conversations/${conversationId}/messages`, payload);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<MessageBody>();
}

const history = async (tenant: TestTenant, userId: string, id: string, query = '') =>
  (await as(tenant, userId).get(`/v1/conversations/${id}/messages${query}`)).json<HistoryBody>();

describe('sending', () => {
  it('assigns dense seqs, parses mentions of members and marks the conversation read for the sender', async () => {
    const { tenant, id } = await groupWith('bob', 'carol');
    const first = await send(tenant, 'alice', id, {
      text: 'hi @bob and @stranger',
      metadata: { kind: 'greeting' },
    });
    expect(first).toMatchObject({
      seq: 1,
      sender_id: 'alice',
      text: 'hi @bob and @stranger',
      mentions: ['bob'],
      reactions: [],
      thread_root_id: null,
    });
    const second = await send(tenant, 'bob', id, { text: '@alice, @carol.' });
    expect(second).toMatchObject({ seq: 2, mentions: ['alice', 'carol'] });
    const conversation = (await as(tenant, 'bob').get(`/v1/conversations/${id}`)).json<{
      unread_count: number;
      last_message: MessageBody;
    }>();
    expect(conversation.unread_count).toBe(0);
    expect(conversation.last_message.id).toBe(second.id);
    const forAlice = (await as(tenant, 'alice').get('/v1/conversations')).json<{
      data: { unread_count: number; mention_count: number }[];
    }>();
    expect(forAlice.data[0]).toMatchObject({ unread_count: 1, mention_count: 1 });
  });

  it('returns the original message for a retried client_msg_id, and refuses it in another conversation', async () => {
    const { tenant, id } = await groupWith('bob');
    const first = await send(tenant, 'bob', id, { text: 'once', client_msg_id: 'c-1' });
    const retry = await as(tenant, 'bob').post(`/v1/conversations/${id}/messages`, {
      text: 'once',
      client_msg_id: 'c-1',
    });
    expect(retry.statusCode).toBe(200);
    expect(retry.json<MessageBody>()).toMatchObject({ id: first.id, seq: 1, client_msg_id: 'c-1' });
    // Another sender may use the same client_msg_id.
    expect((await send(tenant, 'alice', id, { text: 'mine', client_msg_id: 'c-1' })).seq).toBe(2);
    const other = await as(tenant, 'alice').post('/v1/conversations', { type: 'group', members: ['bob'] });
    const elsewhere = await as(tenant, 'bob').post(
      `/v1/conversations/${other.json<{ id: string }>().id}/messages`,
      { text: 'x', client_msg_id: 'c-1' },
    );
    expectProblem(elsewhere, 409, 'conflict');
    expect((await history(tenant, 'bob', id)).data).toHaveLength(2);
  });

  it('rejects bad input with the field path, and writes nothing', async () => {
    const { tenant, id } = await groupWith('bob');
    const cases: [object, string][] = [
      [{ text: '' }, '/body/text'],
      [{}, '/body/text'],
      [{ text: '😀'.repeat(10_001) }, '/body/text'],
      [{ text: 'nul \u0000 byte' }, '/body/text'],
      [{ text: 42 }, '/body/text'],
      [{ text: 'x', metadata: { blob: 'x'.repeat(9000) } }, '/body/metadata'],
      [{ text: 'x', thread_root_id: '01a20000-0000-7000-8000-000000000000' }, '/body/thread_root_id'],
      [{ text: 'x', thread_root_id: 'nope' }, '/body/thread_root_id'],
      [{ text: 'x', attachment_ids: ['01a20000-0000-7000-8000-000000000000'] }, '/body/attachment_ids/0'],
      [{ text: 'x', client_msg_id: '' }, '/body/client_msg_id'],
      [{ text: 'x', colour: 'red' }, '/body/colour'],
    ];
    for (const [payload, path] of cases) {
      const response = await as(tenant, 'bob').post(`/v1/conversations/${id}/messages`, payload);
      const problem = expectProblem(response, 400, 'validation_failed') as unknown as {
        errors: { path: string }[];
      };
      expect(
        problem.errors.map((error) => error.path),
        JSON.stringify(payload).slice(0, 80),
      ).toContain(path);
    }
    // 10,000 code points is the limit, counted as characters, not UTF-16 units.
    expect((await send(tenant, 'bob', id, { text: '😀'.repeat(10_000) })).seq).toBe(1);
  });

  it('refuses VIEWERs, non-members and archived conversations', async () => {
    const { tenant, id } = await groupWith('bob', 'vic');
    await as(tenant, 'alice').patch(`/v1/conversations/${id}/members/vic`, { role: 'VIEWER' });
    expectProblem(
      await as(tenant, 'vic').post(`/v1/conversations/${id}/messages`, { text: 'x' }),
      403,
      'forbidden',
    );
    await putUser(t, tenant, 'outsider');
    expectProblem(
      await as(tenant, 'outsider').post(`/v1/conversations/${id}/messages`, { text: 'x' }),
      404,
      'not_found',
    );
    await as(tenant, 'alice').post(`/v1/conversations/${id}/archive`);
    expectProblem(
      await as(tenant, 'bob').post(`/v1/conversations/${id}/messages`, { text: 'x' }),
      409,
      'conflict',
    );
    expect((await history(tenant, 'bob', id)).data).toEqual([]);
  });

  it('sends direct messages, creating the direct conversation once', async () => {
    const tenant = await createTenant(t);
    for (const userId of ['alice', 'bob']) await putUser(t, tenant, userId);
    const first = await as(tenant, 'alice').post('/v1/direct-messages', {
      to: 'bob',
      text: 'hey',
      client_msg_id: 'dm-1',
    });
    expect(first.statusCode, first.body).toBe(201);
    const reply = await as(tenant, 'bob').post('/v1/direct-messages', { to: 'alice', text: 'hey yourself' });
    expect(reply.json<MessageBody>()).toMatchObject({
      conversation_id: first.json<MessageBody>().conversation_id,
      seq: 2,
    });
    const retry = await as(tenant, 'alice').post('/v1/direct-messages', {
      to: 'bob',
      text: 'hey',
      client_msg_id: 'dm-1',
    });
    expect(retry.statusCode).toBe(200);
    expect(retry.json<MessageBody>().id).toBe(first.json<MessageBody>().id);
    expectProblem(
      await as(tenant, 'alice').post('/v1/direct-messages', { to: 'ghost', text: 'x' }),
      400,
      'validation_failed',
    );
    expectProblem(
      await as(tenant, 'alice').post('/v1/direct-messages', { to: 'alice', text: 'x' }),
      400,
      'validation_failed',
    );
  });

  it('stores a direct message sent several times at once with one client_msg_id once', async () => {
    const tenant = await createTenant(t);
    for (const userId of ['alice', 'bob']) await putUser(t, tenant, userId);
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        as(tenant, 'alice').post('/v1/direct-messages', {
          to: 'bob',
          text: 'once',
          client_msg_id: 'dm-race',
        }),
      ),
    );
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(responses.map((response) => response.json<MessageBody>().id)).size).toBe(1);
    const { conversation_id: id } = responses[0]?.json<MessageBody>() ?? { conversation_id: '' };
    const history = (await as(tenant, 'bob').get(`/v1/conversations/${id}/messages`)).json<{
      data: MessageBody[];
    }>();
    expect(history.data.map((message) => [message.seq, message.text])).toEqual([[1, 'once']]);
  });
});

describe('sends in one batch', () => {
  /** What parley_send_messages is given for one send, as the service builds it (its event too). */
  const sendOf = (
    senderId: string,
    conversationId: string,
    text: string,
    extra: { clientMsgId?: string; threadTargetId?: string } = {},
  ): SendValues =>
    sendValuesOf(
      '',
      senderId,
      conversationId,
      {
        text,
        ...(extra.clientMsgId === undefined ? {} : { client_msg_id: extra.clientMsgId }),
        ...(extra.threadTargetId === undefined ? {} : { thread_root_id: extra.threadTargetId }),
      },
      [],
    );
  const SENDERS = ['OWNER', 'ADMIN', 'MEMBER'];

  it('gives each send its own outcome; a refused one writes nothing and undoes none of the others', async () => {
    const { tenant, id } = await groupWith('bob', 'vic');
    await as(tenant, 'alice').patch(`/v1/conversations/${id}/members/vic`, { role: 'VIEWER' });
    await putUser(t, tenant, 'olga');
    const archived = await as(tenant, 'alice').post('/v1/conversations', { type: 'group', members: ['bob'] });
    const archivedId = archived.json<{ id: string }>().id;
    await as(tenant, 'alice').post(`/v1/conversations/${archivedId}/archive`);

    const outcomes = await sendMessageRows(
      tenantDb(t.database.db.orm, {
        tenantId: tenant.id,
        actor: { kind: 'backend', keyId: tenant.apiKey.id },
      }),
      [
        sendOf('alice', id, 'one', { clientMsgId: 'c1' }),
        sendOf('vic', id, 'viewer'),
        sendOf('olga', id, 'outsider'),
        sendOf('bob', id, 'two'),
        sendOf('alice', archivedId, 'archived'),
        sendOf('alice', id, 'retry of one', { clientMsgId: 'c1' }),
        sendOf('bob', id, 'reply', { threadTargetId: newId() }),
        sendOf('bob', id, 'three'),
      ],
      SENDERS,
    );
    const summary = outcomes.map((outcome) =>
      typeof outcome === 'string' ? outcome : [outcome.created, outcome.message.seq, outcome.message.text],
    );
    expect(summary).toEqual([
      [true, 1, 'one'],
      'role_may_not_send',
      'conversation_not_found',
      [true, 2, 'two'],
      'conversation_archived',
      [false, 1, 'one'],
      'thread_target_elsewhere',
      [true, 3, 'three'],
    ]);
    const seen = await history(tenant, 'alice', id);
    expect(seen.data.map((message) => [message.seq, message.text])).toEqual([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
    ]);
    // Each send moved its sender's watermark and counted itself for the other members.
    const stateOf = async (userId: string) => {
      const response = await as(tenant, userId).get('/v1/unread');
      const body = response.json<{ conversations: { conversation_id: string }[] }>();
      return body.conversations.find((state) => state.conversation_id === id);
    };
    expect(await stateOf('alice')).toMatchObject({ last_read_seq: 1, unread_count: 2 });
    // bob sent the last message: nothing is unread for him, so /v1/unread leaves the conversation out.
    expect(await stateOf('bob')).toBeUndefined();
    const forBob = await as(tenant, 'bob').get(`/v1/conversations/${id}`);
    expect(forBob.json<{ unread_count: number }>().unread_count).toBe(0);
    expect(await stateOf('vic')).toMatchObject({ last_read_seq: 0, unread_count: 3 });
    expect((await history(tenant, 'bob', archivedId)).data).toEqual([]);
  });

  it('answers each request of a concurrent burst with its own status, refusals included', async () => {
    const { tenant, id } = await groupWith('bob', 'vic');
    await as(tenant, 'alice').patch(`/v1/conversations/${id}/members/vic`, { role: 'VIEWER' });
    await putUser(t, tenant, 'olga');
    const url = `/v1/conversations/${id}/messages`;
    const burst = Array.from({ length: 30 }, (_, index) => {
      const sender = index % 10 === 3 ? 'vic' : index % 10 === 7 ? 'olga' : index % 2 === 0 ? 'alice' : 'bob';
      return as(tenant, sender).post(url, { text: `m${index}` });
    });
    const statuses = (await Promise.all(burst)).map((response) => response.statusCode);
    expect(statuses).toEqual(
      Array.from({ length: 30 }, (_, index) => (index % 10 === 3 ? 403 : index % 10 === 7 ? 404 : 201)),
    );
    const seen = await history(tenant, 'alice', id, '?limit=100');
    expect(seen.data.map((message) => message.seq)).toEqual(
      Array.from({ length: 24 }, (_, index) => index + 1),
    );
  });
});

describe('ordering and exactly-once under concurrency', () => {
  // The contract's proof runs against PostgreSQL, where sends really race; the embedded database
  // serializes them, so it runs a smaller version of the same check.
  const senders = SERVER_DATABASE_URL === undefined ? 5 : 20;
  const perSender = SERVER_DATABASE_URL === undefined ? 40 : 200;

  it(`${senders} senders × ${perSender} messages: dense seqs, no duplicates, each retry stored once`, async () => {
    const users = Array.from({ length: senders }, (_, index) => `sender-${index}`);
    const { tenant, id } = await groupWith(...users);
    const results = await Promise.all(
      users.map(async (userId) => {
        const statuses: number[] = [];
        for (let index = 0; index < perSender; index++) {
          const payload = { text: `${userId} #${index}`, client_msg_id: `${userId}-${index}` };
          const url = `/v1/conversations/${id}/messages`;
          // Every fifth message is retried at once, racing its own original.
          const attempts =
            index % 5 === 0
              ? [as(tenant, userId).post(url, payload), as(tenant, userId).post(url, payload)]
              : [as(tenant, userId).post(url, payload)];
          for (const response of await Promise.all(attempts)) statuses.push(response.statusCode);
        }
        return statuses;
      }),
    );
    const statuses = results.flat();
    expect(statuses.filter((status) => status === 201)).toHaveLength(senders * perSender);
    expect(statuses.filter((status) => status !== 201 && status !== 200)).toEqual([]);

    const seen: MessageBody[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = await history(tenant, 'alice', id, `?after_seq=${afterSeq}&limit=200`);
      seen.push(...page.data);
      if (!page.has_more_after) break;
      afterSeq = page.data.at(-1)?.seq ?? afterSeq;
    }
    expect(seen).toHaveLength(senders * perSender);
    expect(seen.map((message) => message.seq)).toEqual(
      Array.from({ length: senders * perSender }, (_, index) => index + 1),
    );
    expect(new Set(seen.map((message) => message.client_msg_id)).size).toBe(senders * perSender);
    // Each sender's own messages are in the order it sent them.
    for (const userId of users) {
      const texts = seen.filter((message) => message.sender_id === userId).map((message) => message.text);
      expect(texts).toEqual(Array.from({ length: perSender }, (_, index) => `${userId} #${index}`));
    }
  }, 300_000);
});

describe('history', () => {
  it('pages the main timeline by seq in every direction, with exact has_more flags', async () => {
    const { tenant, id } = await groupWith('bob');
    const sent: MessageBody[] = [];
    for (let index = 1; index <= 9; index++)
      sent.push(await send(tenant, 'alice', id, { text: `m${index}` }));
    // A thread reply takes seq 10 but stays out of the main timeline.
    await send(tenant, 'bob', id, { text: 'reply', thread_root_id: sent[0]?.id });
    sent.push(await send(tenant, 'alice', id, { text: 'm11' }));
    const seqs = (page: HistoryBody) => page.data.map((message) => message.seq);

    const latest = await history(tenant, 'bob', id, '?limit=4');
    expect(seqs(latest)).toEqual([7, 8, 9, 11]);
    expect(latest).toMatchObject({ has_more_before: true, has_more_after: false });

    const before = await history(tenant, 'bob', id, '?before_seq=6&limit=4');
    expect(seqs(before)).toEqual([2, 3, 4, 5]);
    expect(before).toMatchObject({ has_more_before: true, has_more_after: true });

    const start = await history(tenant, 'bob', id, '?before_seq=3&limit=4');
    expect(seqs(start)).toEqual([1, 2]);
    expect(start).toMatchObject({ has_more_before: false, has_more_after: true });

    const after = await history(tenant, 'bob', id, '?after_seq=7&limit=2');
    expect(seqs(after)).toEqual([8, 9]);
    expect(after).toMatchObject({ has_more_before: true, has_more_after: true });

    const end = await history(tenant, 'bob', id, '?after_seq=9&limit=5');
    expect(seqs(end)).toEqual([11]);
    expect(end).toMatchObject({ has_more_before: true, has_more_after: false });

    const fromZero = await history(tenant, 'bob', id, '?after_seq=0&limit=3');
    expect(seqs(fromZero)).toEqual([1, 2, 3]);
    expect(fromZero.has_more_before).toBe(false);

    const around = await history(tenant, 'bob', id, `?around=${sent[4]?.id ?? ''}&limit=4`);
    expect(seqs(around)).toEqual([3, 4, 5, 6]);
    expect(around).toMatchObject({ has_more_before: true, has_more_after: true });

    const empty = await groupWith('bob');
    expect(await history(empty.tenant, 'bob', empty.id)).toEqual({
      data: [],
      has_more_before: false,
      has_more_after: false,
    });

    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations/${id}/messages?before_seq=5&after_seq=1`),
      400,
      'validation_failed',
    );
    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations/${id}/messages?around=${empty.id}`),
      400,
      'validation_failed',
    );
    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations/${id}/messages?limit=0`),
      400,
      'validation_failed',
    );
  });

  it('shows reactions and tombstones as the reader sees them, and only to those who may read', async () => {
    const { tenant, id } = await groupWith('bob', 'carol');
    const first = await send(tenant, 'alice', id, { text: 'first' });
    const second = await send(tenant, 'alice', id, { text: 'second' });
    const third = await send(tenant, 'bob', id, { text: 'third' });
    const thumbs = encodeURIComponent('👍');
    await as(tenant, 'bob').put(`/v1/messages/${first.id}/reactions/:tada:`);
    await as(tenant, 'carol').put(`/v1/messages/${first.id}/reactions/${thumbs}`);
    await as(tenant, 'bob').put(`/v1/messages/${first.id}/reactions/${thumbs}`);
    await as(tenant, 'carol').put(`/v1/messages/${third.id}/reactions/${thumbs}`);
    expect((await as(tenant, 'alice').delete(`/v1/messages/${second.id}`)).statusCode).toBe(204);

    const asBob = await history(tenant, 'bob', id);
    expect(asBob.data.map((message) => [message.seq, message.text, message.reactions])).toEqual([
      [
        1,
        'first',
        [
          { emoji: ':tada:', count: 1, me: true },
          { emoji: '👍', count: 2, me: true },
        ],
      ],
      [2, null, []],
      [3, 'third', [{ emoji: '👍', count: 1, me: false }]],
    ]);
    expect(asBob.data[1]?.deleted_at).not.toBeNull();
    // Every page shape reads the same reactions, and each message reads as it does on its own.
    const around = await history(tenant, 'carol', id, `?around=${third.id}&limit=2`);
    const alone = (await as(tenant, 'carol').get(`/v1/messages/${third.id}`)).json<MessageBody>();
    expect(around.data.map((message) => message.seq)).toEqual([2, 3]);
    expect(around.data[1]).toEqual(alone);
    const after = await history(tenant, 'carol', id, '?after_seq=0&limit=1');
    expect(after.data[0]?.reactions).toEqual([
      { emoji: ':tada:', count: 1, me: false },
      { emoji: '👍', count: 2, me: true },
    ]);

    // A thread reply is no anchor for the main timeline.
    const reply = await send(tenant, 'bob', id, { text: 'reply', thread_root_id: first.id });
    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations/${id}/messages?around=${reply.id}`),
      400,
      'validation_failed',
    );
    // Not a member: 404 for a group, 403 for a channel; another tenant cannot see it at all.
    await putUser(t, tenant, 'dave');
    expectProblem(await as(tenant, 'dave').get(`/v1/conversations/${id}/messages`), 404, 'not_found');
    const channel = (
      await as(tenant, 'alice').post('/v1/conversations', { type: 'channel', name: 'c' })
    ).json<{ id: string }>();
    await send(tenant, 'alice', channel.id, { text: 'in the channel' });
    expectProblem(await as(tenant, 'dave').get(`/v1/conversations/${channel.id}/messages`), 403, 'forbidden');
    const other = await createTenant(t);
    await putUser(t, other, 'alice');
    expectProblem(await as(other, 'alice').get(`/v1/conversations/${id}/messages`), 404, 'not_found');
    // A seq beyond what a seq can be is bad input, not a server error.
    for (const path of [
      `/v1/conversations/${id}/messages?after_seq=1e300`,
      `/v1/conversations/${id}/messages?before_seq=99999999999999999999`,
      `/v1/conversations/${id}/messages?after_seq=9223372036854775807`,
      `/v1/messages/${first.id}/replies?after_seq=1e300`,
    ]) {
      expectProblem(await as(tenant, 'bob').get(path), 400, 'validation_failed');
    }
  });
});

describe('threads', () => {
  it('attaches replies (and replies to replies) to the root, counting them', async () => {
    const { tenant, id } = await groupWith('bob');
    const root = await send(tenant, 'alice', id, { text: 'root' });
    const reply = await send(tenant, 'bob', id, { text: 'r1', thread_root_id: root.id });
    const nested = await send(tenant, 'alice', id, { text: 'r2', thread_root_id: reply.id });
    expect(nested.thread_root_id).toBe(root.id);
    const updatedRoot = (await as(tenant, 'bob').get(`/v1/messages/${root.id}`)).json<MessageBody>();
    expect(updatedRoot).toMatchObject({ reply_count: 2 });
    expect(updatedRoot.last_reply_at).not.toBeNull();

    const replies = (await as(tenant, 'bob').get(`/v1/messages/${root.id}/replies`)).json<{
      data: MessageBody[];
      has_more_after: boolean;
    }>();
    expect(replies.data.map((message) => message.text)).toEqual(['r1', 'r2']);
    const paged = (
      await as(tenant, 'bob').get(`/v1/messages/${root.id}/replies?after_seq=${reply.seq}&limit=1`)
    ).json<{ data: MessageBody[]; has_more_after: boolean }>();
    expect(paged).toMatchObject({ has_more_after: false });
    expect(paged.data.map((message) => message.text)).toEqual(['r2']);

    await as(tenant, 'bob').delete(`/v1/messages/${reply.id}`);
    expect((await as(tenant, 'bob').get(`/v1/messages/${root.id}`)).json<MessageBody>().reply_count).toBe(1);
    await as(tenant, 'alice').delete(`/v1/messages/${root.id}`);
    expectProblem(
      await as(tenant, 'bob').post(`/v1/conversations/${id}/messages`, {
        text: 'late',
        thread_root_id: root.id,
      }),
      409,
      'conflict',
    );
  });
});

describe('edits', () => {
  it('lets only the sender edit, keeping every earlier version', async () => {
    const { tenant, id } = await groupWith('bob', 'carol');
    const message = await send(tenant, 'bob', id, { text: 'v1 @carol' });
    expect(message.mentions).toEqual(['carol']);
    const v2 = (
      await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: 'v2 @alice' })
    ).json<MessageBody>();
    expect(v2).toMatchObject({ text: 'v2 @alice', mentions: ['alice'], seq: message.seq });
    expect(v2.edited_at).not.toBeNull();
    await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: 'v3' });
    const edits = (await as(tenant, 'carol').get(`/v1/messages/${message.id}/edits`)).json<{
      data: { version: number; text: string; created_at: string; edited_at: string }[];
    }>();
    expect(edits.data.map((edit) => [edit.version, edit.text])).toEqual([
      [1, 'v1 @carol'],
      [2, 'v2 @alice'],
    ]);
    expect(Date.parse(edits.data[1]?.created_at ?? '')).toBe(Date.parse(edits.data[0]?.edited_at ?? ''));

    // Even the OWNER cannot edit someone else's message.
    expectProblem(
      await as(tenant, 'alice').patch(`/v1/messages/${message.id}`, { text: 'hijack' }),
      403,
      'forbidden',
    );
    expectProblem(
      await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: '' }),
      400,
      'validation_failed',
    );
  });
});

describe('deletion', () => {
  it('leaves a tombstone with its seq, purging text, mentions, reactions, pin and history', async () => {
    const { tenant, id } = await groupWith('bob', 'carol');
    const message = await send(tenant, 'bob', id, { text: 'oops @carol' });
    await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: 'oops again @carol' });
    await as(tenant, 'carol').put(`/v1/messages/${message.id}/reactions/${encodeURIComponent('👍')}`);
    await as(tenant, 'alice').post(`/v1/messages/${message.id}/pin`);

    expectProblem(await as(tenant, 'carol').delete(`/v1/messages/${message.id}`), 403, 'forbidden');
    expect((await as(tenant, 'bob').delete(`/v1/messages/${message.id}`)).statusCode).toBe(204);
    const tombstone = (await as(tenant, 'carol').get(`/v1/messages/${message.id}`)).json<MessageBody>();
    expect(tombstone).toMatchObject({
      seq: message.seq,
      sender_id: 'bob',
      text: null,
      mentions: [],
      reactions: [],
      pinned_at: null,
    });
    expect(tombstone.deleted_at).not.toBeNull();
    expect((await as(tenant, 'carol').get(`/v1/messages/${message.id}/edits`)).json()).toEqual({ data: [] });
    expect((await history(tenant, 'carol', id)).data.map((item) => item.seq)).toEqual([message.seq]);
    // Deleting again changes nothing; changing a tombstone is a conflict.
    expect((await as(tenant, 'bob').delete(`/v1/messages/${message.id}`)).statusCode).toBe(204);
    expectProblem(
      await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: 'back' }),
      409,
      'conflict',
    );
    expectProblem(
      await as(tenant, 'carol').put(`/v1/messages/${message.id}/reactions/${encodeURIComponent('👍')}`),
      409,
      'conflict',
    );
  });

  it("lets an ADMIN delete others' messages", async () => {
    const { tenant, id } = await groupWith('bob', 'mod');
    await as(tenant, 'alice').patch(`/v1/conversations/${id}/members/mod`, { role: 'ADMIN' });
    const message = await send(tenant, 'bob', id, { text: 'spam' });
    expect((await as(tenant, 'mod').delete(`/v1/messages/${message.id}`)).statusCode).toBe(204);
  });
});

describe('reactions and pins', () => {
  it('aggregates reactions per emoji with the caller’s own flag', async () => {
    const { tenant, id } = await groupWith('bob', 'carol');
    const message = await send(tenant, 'alice', id, { text: 'vote' });
    const thumbs = encodeURIComponent('👍');
    await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/${thumbs}`);
    await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/${thumbs}`);
    await as(tenant, 'carol').put(`/v1/messages/${message.id}/reactions/${thumbs}`);
    const withParty = (
      await as(tenant, 'carol').put(`/v1/messages/${message.id}/reactions/:tada:`)
    ).json<MessageBody>();
    expect(withParty.reactions).toEqual([
      { emoji: '👍', count: 2, me: true },
      { emoji: ':tada:', count: 1, me: true },
    ]);
    const asBob = (await as(tenant, 'bob').get(`/v1/messages/${message.id}`)).json<MessageBody>();
    expect(asBob.reactions).toEqual([
      { emoji: '👍', count: 2, me: true },
      { emoji: ':tada:', count: 1, me: false },
    ]);
    const who = (await as(tenant, 'alice').get(`/v1/messages/${message.id}/reactions?limit=2`)).json<{
      data: { emoji: string; user_id: string }[];
      next_cursor: string | null;
    }>();
    expect(who.data.map((row) => [row.emoji, row.user_id])).toEqual([
      [':tada:', 'carol'],
      ['👍', 'bob'],
    ]);
    expect(who.next_cursor).not.toBeNull();
    const removed = (
      await as(tenant, 'bob').delete(`/v1/messages/${message.id}/reactions/${thumbs}`)
    ).json<MessageBody>();
    expect(removed.reactions[0]).toEqual({ emoji: '👍', count: 1, me: false });
    expect(
      (await as(tenant, 'bob').delete(`/v1/messages/${message.id}/reactions/${thumbs}`)).statusCode,
    ).toBe(200);

    for (const bad of ['ok', encodeURIComponent('👍👍'), ':Bad Name:']) {
      const response = await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/${bad}`);
      expect(expectProblem(response, 400, 'validation_failed')).toMatchObject({
        errors: [{ path: '/params/emoji' }],
      });
    }
  });

  it('pins for ADMINs and OWNERs, listed most recent first', async () => {
    const { tenant, id } = await groupWith('bob');
    const first = await send(tenant, 'bob', id, { text: 'first' });
    const second = await send(tenant, 'bob', id, { text: 'second' });
    expectProblem(await as(tenant, 'bob').post(`/v1/messages/${first.id}/pin`), 403, 'forbidden');
    expect(
      (await as(tenant, 'alice').post(`/v1/messages/${first.id}/pin`)).json<MessageBody>().pinned_at,
    ).not.toBeNull();
    await as(tenant, 'alice').post(`/v1/messages/${second.id}/pin`);
    const pins = (await as(tenant, 'bob').get(`/v1/conversations/${id}/pins`)).json<{
      data: MessageBody[];
    }>();
    expect(pins.data.map((message) => message.text)).toEqual(['second', 'first']);
    await as(tenant, 'alice').delete(`/v1/messages/${second.id}/pin`);
    const after = (await as(tenant, 'bob').get(`/v1/conversations/${id}/pins`)).json<{
      data: MessageBody[];
    }>();
    expect(after.data.map((message) => message.text)).toEqual(['first']);
    const forged = Buffer.from('["not a date","x"]').toString('base64url');
    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations/${id}/pins?cursor=${forged}`),
      400,
      'validation_failed',
    );
  });
});

describe('VIEWERs only read', () => {
  it('refuses every write a VIEWER tries, and allows reads', async () => {
    const { tenant, id } = await groupWith('bob', 'vic');
    const message = await send(tenant, 'bob', id, { text: 'hello' });
    await as(tenant, 'alice').patch(`/v1/conversations/${id}/members/vic`, { role: 'VIEWER' });
    const vic = as(tenant, 'vic');
    for (const response of [
      await vic.post(`/v1/conversations/${id}/messages`, { text: 'x' }),
      await vic.post(`/v1/conversations/${id}/messages`, { text: 'x', thread_root_id: message.id }),
      await vic.put(`/v1/messages/${message.id}/reactions/${encodeURIComponent('👍')}`),
      await vic.delete(`/v1/messages/${message.id}/reactions/${encodeURIComponent('👍')}`),
      await vic.post(`/v1/messages/${message.id}/pin`),
      await vic.delete(`/v1/messages/${message.id}`),
      await vic.patch(`/v1/messages/${message.id}`, { text: 'x' }),
    ]) {
      expectProblem(response, 403, 'forbidden');
    }
    expect((await vic.get(`/v1/conversations/${id}/messages`)).statusCode).toBe(200);
    expect((await vic.get(`/v1/messages/${message.id}`)).statusCode).toBe(200);
    expect((await vic.post(`/v1/conversations/${id}/read`)).statusCode).toBe(200);
  });
});

describe('forged cursors', () => {
  it('answer 400, never 500, wherever a cursor part is typed', async () => {
    const { tenant } = await groupWith('bob');
    const forge = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    expectProblem(
      await as(tenant, 'bob').get(`/v1/conversations?cursor=${forge(['yesterday', 'x'])}`),
      400,
      'validation_failed',
    );
    expectProblem(
      await as(tenant, 'bob').get(`/v1/channels?cursor=${forge(['not-a-uuid'])}`),
      400,
      'validation_failed',
    );
    const admin = await t.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants?cursor=${forge(['not-a-uuid'])}`,
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    expectProblem(admin, 400, 'validation_failed');
  });
});
