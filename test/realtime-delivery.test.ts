import { describe, expect, it } from 'vitest';
import { actingAs } from './helpers/factories.ts';
import { uploadFile } from './helpers/uploads.ts';
import { useRealtimeApp, type GroupSetup } from './helpers/realtime.ts';
import { type ServerFrame } from './helpers/ws-client.ts';

// Live delivery over sockets: who receives which event, typing and presence, membership changes.

const rt = useRealtimeApp();
const { t, setup, connect, sendRest } = rt;
type Setup = GroupSetup;

describe('delivery', () => {
  it('announces presence to those sharing a direct or group conversation, not a channel', async () => {
    const s = await setup();
    // alice shares the group with bob, and only a channel with dave.
    const channel = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(s.tenant, 'alice'),
      payload: { type: 'channel', name: 'all-hands', members: ['dave'] },
    });
    expect(channel.statusCode, channel.body).toBe(201);
    const bob = await connect(await s.token('bob'));
    const dave = await connect(await s.token('dave'));
    const alice = await connect(await s.token('alice'));
    const isAliceOnline = (frame: ServerFrame) =>
      frame.event?.type === 'presence.changed' && frame.event.data.user_id === 'alice';
    expect((await bob.waitFor(isAliceOnline)).event).toMatchObject({
      conversation_id: s.conversationId,
      data: { status: 'online' },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dave.frames.filter(isAliceOnline)).toEqual([]);
    await Promise.all([alice.close(), bob.close(), dave.close()]);
  });

  it('carries in message.created the message exactly as the send answered it, replies included', async () => {
    const s = await setup();
    const socket = await connect(await s.token('carol'));
    const root = await sendRest(s, 'alice', 'root');
    const reply = await sendRest(s, 'bob', 'reply', { thread_root_id: root.id });
    // A reply to a reply: the database, not the sender, names the thread root in the event.
    const nested = await sendRest(s, 'alice', 'nested @bob', {
      thread_root_id: reply.id,
      client_msg_id: 'n-1',
      metadata: { k: 1 },
    });
    for (const sent of [root, reply, nested]) {
      const frame = await socket.waitFor(
        (candidate) => candidate.event?.type === 'message.created' && candidate.event.data.id === sent.id,
      );
      expect(frame.event?.seq).toBe(sent.seq);
      expect(frame.event?.data).toEqual(sent);
    }
    expect(nested).toMatchObject({ thread_root_id: root.id, mentions: ['bob'], client_msg_id: 'n-1' });
    await socket.close();
  });

  it("sends attachments over the socket: the ack and every member's event carry them, links signed", async () => {
    const s = await setup();
    const bob = await connect(await s.token('bob'));
    const carol = await connect(await s.token('carol'));
    const uploaded = await uploadFile(t, s.tenant, 'bob', 'minutes.txt', Buffer.from('the minutes'));
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    const attachmentId = uploaded.json<{ id: string }>().id;
    bob.send({
      type: 'send',
      ref: 'a1',
      conversation_id: s.conversationId,
      text: 'minutes attached',
      attachment_ids: [attachmentId],
    });
    const ack = await bob.waitFor((frame) => frame.ref === 'a1');
    expect((ack.message as { attachments?: unknown } | undefined)?.attachments).toMatchObject([
      { id: attachmentId, name: 'minutes.txt' },
    ]);
    const event = (await carol.waitFor((frame) => frame.event?.type === 'message.created')).event;
    const [attachment] = (event?.data as { attachments: { id: string; url: string }[] }).attachments;
    expect(attachment?.id).toBe(attachmentId);
    const file = await t.app.inject({ method: 'GET', url: attachment?.url ?? '' });
    expect(file.body).toBe('the minutes');
    // A file without a caption: no text at all; neither text nor files is refused.
    const photo = await uploadFile(t, s.tenant, 'bob', 'photo.txt', Buffer.from('a photo'));
    const photoId = photo.json<{ id: string }>().id;
    bob.send({ type: 'send', ref: 'a2', conversation_id: s.conversationId, attachment_ids: [photoId] });
    const captionless = await bob.waitFor((frame) => frame.ref === 'a2');
    expect(captionless.message).toMatchObject({ text: '', attachments: [{ id: photoId }] });
    bob.send({ type: 'send', ref: 'a3', conversation_id: s.conversationId });
    expect(await bob.waitFor((frame) => frame.ref === 'a3')).toMatchObject({
      type: 'error',
      code: 'validation_failed',
    });
    await Promise.all([bob.close(), carol.close()]);
  });

  it("delivers committed changes to every member's sockets, the sender's other devices included", async () => {
    const s = await setup();
    const bobPhone = await connect(await s.token('bob'));
    const bobLaptop = await connect(await s.token('bob'));
    const carol = await connect(await s.token('carol'));
    const dave = await connect(await s.token('dave'));

    bobPhone.send({
      type: 'send',
      ref: 's1',
      conversation_id: s.conversationId,
      text: 'hello @carol',
      client_msg_id: 'c1',
    });
    const ack = await bobPhone.waitFor((frame) => frame.ref === 's1');
    expect(ack).toMatchObject({ type: 'ack', message: { seq: 1 } });
    for (const socket of [bobLaptop, carol]) {
      const event = (await socket.waitFor((frame) => frame.event?.type === 'message.created')).event;
      expect(event).toMatchObject({
        conversation_id: s.conversationId,
        seq: 1,
        data: { text: 'hello @carol', mentions: ['carol'] },
      });
      expect(typeof event?.cursor).toBe('string');
    }
    // The same client_msg_id over the socket returns the original message.
    bobPhone.send({
      type: 'send',
      ref: 's2',
      conversation_id: s.conversationId,
      text: 'hello @carol',
      client_msg_id: 'c1',
    });
    expect((await bobPhone.waitFor((frame) => frame.ref === 's2')).message?.id).toBe(ack.message?.id);

    const edited = await t.app.inject({
      method: 'PATCH',
      url: `/v1/messages/${ack.message?.id ?? ''}`,
      headers: actingAs(s.tenant, 'bob'),
      payload: { text: 'hello again' },
    });
    expect(edited.statusCode).toBe(200);
    await carol.waitFor((frame) => frame.event?.type === 'message.updated');
    await t.app.inject({
      method: 'PUT',
      url: `/v1/messages/${ack.message?.id ?? ''}/reactions/${encodeURIComponent('🎉')}`,
      headers: actingAs(s.tenant, 'carol'),
    });
    expect(
      (await bobLaptop.waitFor((frame) => frame.event?.type === 'reaction.added')).event?.data,
    ).toMatchObject({
      emoji: '🎉',
      user_id: 'carol',
    });
    carol.send({ type: 'read', ref: 'rd', conversation_id: s.conversationId });
    await carol.waitFor((frame) => frame.ref === 'rd' && frame.type === 'ack');
    // Read state is the reader's own: it reaches carol's sockets, not bob's.
    await carol.waitFor((frame) => frame.event?.type === 'read.updated');
    // dave is not a member: he receives none of it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dave.events()).toEqual([]);
    // bob's devices see bob's own read state (sending marked the conversation read), never carol's.
    const bobReads = bobLaptop.events().filter((event) => event.type === 'read.updated');
    expect(bobReads.map((event) => event.data.user_id)).toEqual(bobReads.map(() => 'bob'));
    for (const socket of [bobPhone, bobLaptop, carol, dave]) await socket.close();
  });

  it('applies membership changes live', async () => {
    const s = await setup();
    const dave = await connect(await s.token('dave'));
    const carol = await connect(await s.token('carol'));
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${s.conversationId}/members`,
      headers: actingAs(s.tenant, 'alice'),
      payload: { user_ids: ['dave'] },
    });
    await dave.waitFor((frame) => frame.event?.type === 'member.added');
    await sendRest(s, 'alice', 'welcome dave');
    await dave.waitFor((frame) => frame.event?.type === 'message.created');

    await t.app.inject({
      method: 'DELETE',
      url: `/v1/conversations/${s.conversationId}/members/carol`,
      headers: actingAs(s.tenant, 'alice'),
    });
    await carol.waitFor((frame) => frame.event?.type === 'member.removed');
    const before = carol.frames.length;
    await sendRest(s, 'alice', 'carol is gone');
    await dave.waitFor((frame) => frame.event?.data.text === 'carol is gone');
    expect(carol.frames.slice(before).filter((frame) => frame.event?.type === 'message.created')).toEqual([]);
    await dave.close();
    await carol.close();
  });

  it('follows a conversation created after connecting on every socket of a member, and stops when it leaves', async () => {
    const s = await setup();
    const [davePhone, daveLaptop, bob] = await Promise.all([
      connect(await s.token('dave')),
      connect(await s.token('dave')),
      connect(await s.token('bob')),
    ]);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(s.tenant, 'alice'),
      payload: { type: 'group', members: ['bob', 'dave'] },
    });
    const later: Setup = { ...s, conversationId: created.json<{ id: string }>().id };
    await sendRest(later, 'alice', 'hello dave');
    for (const socket of [davePhone, daveLaptop, bob]) {
      await socket.waitFor((frame) => frame.event?.data.text === 'hello dave');
    }

    const left = await t.app.inject({
      method: 'DELETE',
      url: `/v1/conversations/${later.conversationId}/members/dave`,
      headers: actingAs(s.tenant, 'dave'),
    });
    expect(left.statusCode, left.body).toBe(204);
    // Both of dave's sockets hear that he left (he is the event's subject), then nothing more of it.
    for (const socket of [davePhone, daveLaptop]) {
      await socket.waitFor((frame) => frame.event?.type === 'member.removed');
    }
    const seen = [davePhone.frames.length, daveLaptop.frames.length];
    await sendRest(later, 'alice', 'dave is gone');
    await bob.waitFor((frame) => frame.event?.data.text === 'dave is gone');
    // A barrier: events reach a socket in log order, so once dave's sockets see him added to another
    // conversation, the message sent before it would have arrived had it been sent to them.
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${s.conversationId}/members`,
      headers: actingAs(s.tenant, 'alice'),
      payload: { user_ids: ['dave'] },
    });
    for (const [index, socket] of [davePhone, daveLaptop].entries()) {
      await socket.waitFor(
        (frame) => frame.event?.type === 'member.added' && frame.event.conversation_id === s.conversationId,
      );
      const texts = socket.frames.slice(seen[index]).map((frame) => frame.event?.data.text);
      expect(texts).not.toContain('dave is gone');
    }
    for (const socket of [davePhone, daveLaptop, bob]) await socket.close();
  });

  it('tells members about joins, leaves and archiving as they happen', async () => {
    const s = await setup();
    const channel = await t.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: actingAs(s.tenant, 'alice'),
      payload: { type: 'channel', name: 'news' },
    });
    const channelId = channel.json<{ id: string }>().id;
    const alice = await connect(await s.token('alice'));
    const dave = await connect(await s.token('dave'));
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/join`,
      headers: actingAs(s.tenant, 'dave'),
    });
    for (const socket of [alice, dave]) {
      expect(
        (await socket.waitFor((frame) => frame.event?.type === 'member.added')).event?.data,
      ).toMatchObject({ user_id: 'dave' });
    }
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/archive`,
      headers: actingAs(s.tenant, 'alice'),
    });
    await dave.waitFor(
      (frame) => frame.event?.type === 'conversation.updated' && frame.event.data.archived_at !== null,
    );
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/unarchive`,
      headers: actingAs(s.tenant, 'alice'),
    });
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/leave`,
      headers: actingAs(s.tenant, 'dave'),
    });
    await alice.waitFor(
      (frame) => frame.event?.type === 'member.removed' && frame.event.data.user_id === 'dave',
    );
    await dave.waitFor((frame) => frame.event?.type === 'member.removed');
    const before = dave.frames.length;
    await t.app.inject({
      method: 'POST',
      url: `/v1/conversations/${channelId}/messages`,
      headers: actingAs(s.tenant, 'alice'),
      payload: { text: 'after dave left' },
    });
    await alice.waitFor((frame) => frame.event?.data.text === 'after dave left');
    expect(dave.frames.slice(before).filter((frame) => frame.event?.type === 'message.created')).toEqual([]);
    await alice.close();
    await dave.close();
  });

  it('announces typing to the other members, and its end', async () => {
    const s = await setup();
    const bob = await connect(await s.token('bob'));
    const carol = await connect(await s.token('carol'));
    bob.send({ type: 'typing.start', ref: 't1', conversation_id: s.conversationId });
    expect((await carol.waitFor((frame) => frame.event?.type === 'typing.started')).event?.data).toEqual({
      user_id: 'bob',
    });
    bob.send({ type: 'typing.stop', conversation_id: s.conversationId });
    await carol.waitFor((frame) => frame.event?.type === 'typing.stopped');
    expect(bob.events().filter((event) => event.type.startsWith('typing'))).toEqual([]);
    await bob.close();
    await carol.close();
  });
});
