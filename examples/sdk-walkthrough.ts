// The README's walk-through, done with the client SDK (@parley/client, packages/client) instead of curl: a
// tenant's backend creates two users and mints their tokens; the users chat in a group, one over REST, the
// other live over the WebSocket, with a reaction, an edit, read state, search and a catch-up over /v1/sync.
//
//   PARLEY_API_KEY=psk_… [PARLEY_URL=http://127.0.0.1:3000] npx tsx examples/sdk-walkthrough.ts
//
// PARLEY_API_KEY is a tenant's api key: `npm start` prints the demo tenant's on its first start.
import { ParleyClient, ParleyError, type Message } from '@parley/client';

const baseUrl = process.env.PARLEY_URL ?? 'http://127.0.0.1:3000';
const apiKey = process.env.PARLEY_API_KEY;
if (!apiKey) {
  console.error('set PARLEY_API_KEY to a tenant api key (npm start prints the demo tenant’s)');
  process.exit(1);
}
const log = (...parts: unknown[]) => console.log(...parts);

// 1. The tenant's backend: it holds the api key, creates users (your own ids) and mints their tokens.
const backend = new ParleyClient({ baseUrl, token: apiKey });
await backend.put('/v1/users/{user_id}', { params: { path: { user_id: 'alice' } }, body: { name: 'Alice' } });
await backend.put('/v1/users/{user_id}', { params: { path: { user_id: 'bob' } }, body: { name: 'Bob' } });
const mint = async (userId: string) =>
  (
    await backend.post('/v1/users/{user_id}/tokens', {
      params: { path: { user_id: userId } },
      body: { ttl_seconds: 600 },
    })
  ).token;
log('backend: created alice and bob, minted their tokens');

// 2. Each user's app gets a client with its own token. A token function is asked again when one expires.
const alice = new ParleyClient({ baseUrl, token: await mint('alice') });
const bob = new ParleyClient({ baseUrl, token: () => mint('bob') });
const me = await alice.get('/v1/me');
log(`alice: I am ${me.id} (${me.name ?? 'no name'})`);

// 3. Alice creates a group with bob.
const group = await alice.post('/v1/conversations', {
  body: { type: 'group', name: 'sdk-walkthrough', members: ['bob'] },
});
log(`alice: created group ${group.name ?? ''} (${group.id}), ${group.member_count} members`);

// 4. Bob's app goes live: every event, in order, once, resuming by itself after any disconnect.
const live = bob.realtime();
const received: Message[] = [];
live.onEvent('message.created', (event) => {
  received.push(event.data);
  log(`bob (live): #${event.seq} ${event.data.sender_id}: ${event.data.text ?? '(no text)'}`);
});
live.onEvent('message.updated', (event) => log(`bob (live): #${event.seq} edited: ${event.data.text ?? ''}`));
live.onEvent('reaction.added', (event) =>
  log(`bob (live): ${event.data.user_id} reacted ${event.data.emoji}`),
);
const ready = await live.connect();
log(`bob: connected as ${ready.user_id}`);

// 5. Alice sends over REST (the SDK sets client_msg_id and Idempotency-Key, so its retries are safe)…
const hello = await alice.post('/v1/conversations/{conversation_id}/messages', {
  params: { path: { conversation_id: group.id } },
  body: { text: 'Hello @bob, this came through the SDK' },
});
log(`alice: sent #${hello.seq}, mentions ${hello.mentions.join(', ')}`);

// 6. …and bob answers through his socket's outbox: shown at once as pending, then acknowledged.
const reply = live.send(group.id, { text: 'Hi Alice! Sent over the socket.' });
log(`bob: reply is ${reply.status}`);
const stored = await reply.sent;
log(`bob: reply is ${reply.status} as #${stored.seq}`);

// 7. A reaction, an edit (its earlier text is kept), and the read state.
await bob.put('/v1/messages/{message_id}/reactions/{emoji}', {
  params: { path: { message_id: hello.id, emoji: '👍' } },
});
await alice.patch('/v1/messages/{message_id}', {
  params: { path: { message_id: hello.id } },
  body: { text: 'Hello @bob, this came through the SDK (edited)' },
});
const edits = await alice.get('/v1/messages/{message_id}/edits', {
  params: { path: { message_id: hello.id } },
});
log(`alice: the message has ${edits.data.length} earlier version(s)`);
const before = await alice.get('/v1/unread');
log(`alice: ${before.total_unread} unread`);
await alice.post('/v1/conversations/{conversation_id}/read', {
  params: { path: { conversation_id: group.id } },
});
const after = await alice.get('/v1/unread');
log(`alice: ${after.total_unread} unread after marking the group read`);

// 8. Search, and what a typed refusal looks like.
const found = await alice.get('/v1/search/messages', { params: { query: { q: 'socket' } } });
log(`alice: search "socket" found ${found.data.length} message(s)`);
try {
  await alice.get('/v1/conversations/{conversation_id}', {
    params: { path: { conversation_id: '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83' } },
  });
} catch (error) {
  if (!(error instanceof ParleyError)) throw error;
  log(`alice: a conversation she cannot see is ${error.status} ${error.code}`);
}

// 9. Bob's socket saw both messages live. His app keeps `live.cursor`; a later run resumes from it, or
// catches up over HTTP first, which is what this does: from the cursor of before the messages, page by page.
while (received.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
live.close();
const sync = await bob.get('/v1/sync', { params: { query: { since: ready.cursor } } });
log(`bob: /v1/sync since connecting: ${sync.events.map((event) => event.type).join(', ')}`);
log('done');
