import { describe, expect, it } from 'vitest';
import { newId } from '../src/ids.ts';
import { inTenant, tenantDb } from '../src/db/tenant-scope.ts';
import { sendMessageRows, type SendValues } from '../src/modules/messages/message-sends.repository.ts';
import { createFileLinker, fileLinkKey } from '../src/modules/attachments/file-linker.ts';
import { createSendBatcher, sendValuesOf } from '../src/modules/messages/messages.service.ts';
import { useTestApp } from './helpers/app.ts';
import { SERVER_DATABASE_URL } from './helpers/database.ts';
import { createTenant, expectProblem, putUser, type MessageBody } from './helpers/factories.ts';
import { messageHelpers } from './helpers/messages.ts';

/** Links of attachments as the send's event shows them (these sends have none). */
const TEST_LINKS = createFileLinker(fileLinkKey('test'), 3600);

// Sending: what a send stores and answers, sends batched into one call, and exactly-once under concurrency.

const t = useTestApp();
const { as, groupWith, send, history } = messageHelpers(t);

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
      TEST_LINKS,
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
      typeof outcome === 'string' || outcome instanceof Error
        ? outcome
        : [outcome.created, outcome.message.seq, outcome.message.text],
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

describe('a batch whose call fails after its commit', () => {
  const SENDERS = ['OWNER', 'ADMIN', 'MEMBER'];
  const sendOf = (senderId: string, conversationId: string, text: string, clientMsgId?: string) =>
    sendValuesOf(
      '',
      senderId,
      conversationId,
      clientMsgId === undefined ? { text } : { text, client_msg_id: clientMsgId },
      [],
      TEST_LINKS,
    );
  const backendOf = (tenant: { id: string; apiKey: { id: string } }) =>
    tenantDb(t.database.db.orm, { tenantId: tenant.id, actor: { kind: 'backend', keyId: tenant.apiKey.id } });

  /**
   * The real send statement, except that the call of the batch (the second call: the first send goes alone,
   * the others wait for it) loses its answer, with `error`: once it has committed, or while its commit is
   * still on the way. Then its transaction is held open until the first send is tried again, so the
   * look-up by id finds nothing and the retries meet the batch's rows (on the embedded database, whose one
   * connection the look-up would wait for, it commits at once and the look-up finds them).
   */
  function batcherLosingTheBatchAnswer(error: 'after the commit' | 'while the commit lands') {
    const orm = t.database.db.orm;
    const calls: number[] = [];
    let landed: Promise<unknown> = Promise.resolve();
    let retried = () => {};
    const retrying = new Promise<void>((resolve) => (retried = resolve));
    const batcher = createSendBatcher(orm, 1, async (tenant, sends) => {
      calls.push(sends.length);
      if (calls.length === 3) retried();
      if (calls.length !== 2) return sendMessageRows(tenant, sends, SENDERS);
      if (error === 'after the commit') {
        await sendMessageRows(tenant, sends, SENDERS);
      } else {
        if (SERVER_DATABASE_URL === undefined) retried();
        let inserted = () => {};
        const insertedRows = new Promise<void>((resolve) => (inserted = resolve));
        landed = inTenant(orm, tenant.tenantId, async (scope) => {
          await sendMessageRows(scope, sends, SENDERS);
          inserted();
          await retrying;
        });
        await Promise.race([insertedRows, landed]);
      }
      throw new Error('Connection terminated unexpectedly');
    });
    return { batcher, calls, landed: () => landed };
  }

  it.each(['after the commit', 'while the commit lands'] as const)(
    'answers each send as created with its stored message, stored once, seqs dense (error %s)',
    async (landing) => {
      const { tenant, id } = await groupWith('bob');
      const { batcher, calls, landed } = batcherLosingTheBatchAnswer(landing);
      const sends = [
        sendOf('alice', id, 'one'),
        sendOf('bob', id, 'two'),
        sendOf('alice', id, 'three', 'c-3'),
        sendOf('bob', id, 'four'),
      ];
      const outcomes = await Promise.all(sends.map((send) => batcher.send(backendOf(tenant), send)));
      await landed();
      expect(
        outcomes.map((outcome) =>
          typeof outcome === 'string' ? outcome : [outcome.created, outcome.message.id, outcome.message.text],
        ),
      ).toEqual(sends.map((send) => [true, send.id, send.text]));
      expect(calls.slice(0, 2)).toEqual([1, 3]);
      const seen = await history(tenant, 'alice', id);
      expect(seen.data.map((message) => [message.seq, message.id])).toEqual(
        sends.map((send, index) => [index + 1, send.id]),
      );
      const seqs = outcomes.map((outcome) => (typeof outcome === 'string' ? 0 : outcome.message.seq));
      expect(seqs).toEqual([1, 2, 3, 4]);
    },
  );
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
