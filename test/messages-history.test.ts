import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { createTenant, expectProblem, putUser, type MessageBody } from './helpers/factories.ts';
import { messageHelpers, type HistoryBody } from './helpers/messages.ts';

// Reading messages: history pages in every direction, threads, and cursors that were never issued.

const t = useTestApp();
const { as, groupWith, send, history } = messageHelpers(t);

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
