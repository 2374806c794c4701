import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { expectProblem, type MessageBody } from './helpers/factories.ts';
import { messageHelpers } from './helpers/messages.ts';

// Changing messages: edits and their history, deletion, reactions and pins, and what a VIEWER may not do.

const t = useTestApp();
const { as, groupWith, send, history } = messageHelpers(t);

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
  it('lists the latest 100 earlier versions of a message edited more often', async () => {
    const { tenant, id } = await groupWith('bob');
    const message = await send(tenant, 'bob', id, { text: 'v1' });
    for (let version = 2; version <= 103; version += 1) {
      const response = await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, { text: `v${version}` });
      expect(response.statusCode).toBe(200);
    }
    const edits = (await as(tenant, 'alice').get(`/v1/messages/${message.id}/edits`)).json<{
      data: { version: number; text: string }[];
    }>();
    expect(edits.data).toHaveLength(100);
    expect(edits.data[0]).toMatchObject({ version: 3, text: 'v3' });
    expect(edits.data[99]).toMatchObject({ version: 102, text: 'v102' });
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

  it('keeps a message to 50 different emoji, any of which can still be added', async () => {
    const { tenant, id } = await groupWith('bob');
    const message = await send(tenant, 'alice', id, { text: 'so many feelings' });
    for (let index = 0; index < 50; index += 1) {
      const response = await as(tenant, 'alice').put(`/v1/messages/${message.id}/reactions/:e${index}:`);
      expect(response.statusCode).toBe(200);
    }
    const refused = await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/:e50:`);
    expect(expectProblem(refused, 409, 'conflict').detail).toContain('50 different emoji');
    // One of the 50, by someone who had not reacted with it yet, is still taken.
    const joined = (
      await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/:e7:`)
    ).json<MessageBody>();
    expect(joined.reactions).toHaveLength(50);
    expect(joined.reactions[7]).toEqual({ emoji: ':e7:', count: 2, me: true });
    // Once one goes, a new one fits.
    await as(tenant, 'alice').delete(`/v1/messages/${message.id}/reactions/:e0:`);
    expect((await as(tenant, 'bob').put(`/v1/messages/${message.id}/reactions/:e50:`)).statusCode).toBe(200);
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
