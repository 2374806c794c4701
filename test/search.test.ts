import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import {
  asUser,
  createTenantWithUsers,
  expectProblem,
  sendText,
  type MessageBody,
  type TestTenant,
} from './helpers/factories.ts';

const t = useTestApp();

interface Hit {
  message: MessageBody;
  highlight: string;
}

interface Results {
  data: Hit[];
  next_cursor: string | null;
}

interface Problem {
  errors?: { path: string; message: string }[];
}

const tenantWithUsers = (...userIds: string[]) => createTenantWithUsers(t, ...userIds);

const as = (tenant: TestTenant, userId: string) => asUser(t, tenant, userId);

async function createConversation(
  tenant: TestTenant,
  owner: string,
  payload: { type: 'group' | 'channel'; name?: string; members?: string[] },
): Promise<string> {
  const response = await as(tenant, owner).post('/v1/conversations', payload);
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

const searchUrl = (params: Record<string, string>) =>
  `/v1/search/messages?${new URLSearchParams(params).toString()}`;

async function search(tenant: TestTenant, userId: string, params: Record<string, string>): Promise<Results> {
  const response = await as(tenant, userId).get(searchUrl(params));
  expect(response.statusCode, response.body).toBe(200);
  return response.json<Results>();
}

/** The texts found for `q`, in result order. */
async function textsFound(
  tenant: TestTenant,
  userId: string,
  q: string,
  params: Record<string, string> = {},
): Promise<(string | null)[]> {
  return (await search(tenant, userId, { q, ...params })).data.map((hit) => hit.message.text);
}

/** A tenant with alice and bob in one group: the common case. */
async function groupOfTwo() {
  const tenant = await tenantWithUsers('alice', 'bob');
  const group = await createConversation(tenant, 'alice', { type: 'group', members: ['bob'] });
  return { tenant, group };
}

const b64 = (text: string) => Buffer.from(text).toString('base64url');

/** Follows next_cursor from the first page of `q` to the last: the ids found, in order, and the page count. */
async function pageThrough(tenant: TestTenant, userId: string, q: string, limit: number) {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const params: Record<string, string> = { q, limit: String(limit) };
    if (cursor !== null) params.cursor = cursor;
    const page = await search(tenant, userId, params);
    expect(page.data.length).toBeLessThanOrEqual(limit);
    ids.push(...page.data.map((hit) => hit.message.id));
    cursor = page.next_cursor;
    pages++;
  } while (cursor !== null && pages < 50);
  return { ids, pages };
}

describe('full-text matching', () => {
  it('stems words: "run" finds "running" and "runs"', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'I am running late');
    await send(tenant, 'bob', group, 'She runs the show');
    await send(tenant, 'bob', group, 'The rundown is attached');
    await send(tenant, 'bob', group, 'Walking home');

    expect((await textsFound(tenant, 'alice', 'run')).sort()).toEqual([
      'I am running late',
      'She runs the show',
    ]);
    expect((await textsFound(tenant, 'alice', 'RUNNING')).sort()).toEqual([
      'I am running late',
      'She runs the show',
    ]);
    expect(await textsFound(tenant, 'alice', 'walked')).toEqual(['Walking home']);
    expect(await textsFound(tenant, 'alice', 'swimming')).toEqual([]);
  });

  it('matches a "quoted phrase" only in that order', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'The release notes are ready');
    await send(tenant, 'bob', group, 'Some notes about the release');
    expect(await textsFound(tenant, 'alice', '"release notes"')).toEqual(['The release notes are ready']);
    expect((await textsFound(tenant, 'alice', 'release notes')).sort()).toEqual([
      'Some notes about the release',
      'The release notes are ready',
    ]);
  });

  it('leaves out -excluded words and -"excluded phrases"', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'deploy the api');
    await send(tenant, 'bob', group, 'deploy the draft');
    await send(tenant, 'bob', group, 'deploying drafts again');
    await send(tenant, 'bob', group, 'deploy after the draft review');
    await send(tenant, 'bob', group, 'review the draft, then deploy');
    expect(await textsFound(tenant, 'alice', 'deploy -draft')).toEqual(['deploy the api']);
    expect((await textsFound(tenant, 'alice', 'deploy -"draft review"')).sort()).toEqual([
      'deploy the api',
      'deploy the draft',
      'deploying drafts again',
      'review the draft, then deploy',
    ]);
    expect(await textsFound(tenant, 'alice', '"draft review" -api')).toEqual([
      'deploy after the draft review',
    ]);
  });

  it('puts the best match first', async () => {
    const { tenant, group } = await groupOfTwo();
    // The strong match is sent first: were ranks ignored, newer (higher) ids would come first.
    await send(tenant, 'bob', group, 'deploy, then rollback if the deploy fails');
    await send(tenant, 'bob', group, 'we deploy on friday');
    await send(tenant, 'bob', group, 'rollback plan');
    await send(tenant, 'bob', group, 'lunch on friday');

    const both = await textsFound(tenant, 'alice', 'deploy or rollback');
    expect(both).toHaveLength(3);
    expect(both[0]).toBe('deploy, then rollback if the deploy fails');

    // More occurrences of the one term rank higher too.
    await send(tenant, 'bob', group, 'kiwi');
    await send(tenant, 'bob', group, 'kiwi kiwi kiwi, more kiwi');
    await send(tenant, 'bob', group, 'a kiwi');
    expect((await textsFound(tenant, 'alice', 'kiwi'))[0]).toBe('kiwi kiwi kiwi, more kiwi');
  });
});

describe('who can find what', () => {
  it("finds only messages of the caller's own conversations, in the caller's tenant", async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol');
    const other = await tenantWithUsers('alice', 'bob');
    const shared = await createConversation(tenant, 'alice', { type: 'group', members: ['bob'] });
    const notAlices = await createConversation(tenant, 'bob', { type: 'group', members: ['carol'] });
    const channel = await createConversation(tenant, 'bob', { type: 'channel', name: 'zoo' });
    const elsewhere = await createConversation(other, 'alice', { type: 'group', members: ['bob'] });
    const mine = await send(tenant, 'bob', shared, 'zebra crossing');
    await send(tenant, 'carol', notAlices, 'zebra secrets');
    await send(tenant, 'bob', channel, 'zebra in the open channel');
    await send(other, 'bob', elsewhere, 'zebra of another tenant');

    const found = await search(tenant, 'alice', { q: 'zebra' });
    expect(found.data.map((hit) => hit.message.id)).toEqual([mine.id]);
    expect(found.next_cursor).toBeNull();

    // Naming a conversation the caller is not in reveals nothing either.
    const response = await as(tenant, 'alice').get(searchUrl({ q: 'zebra', conversation_id: notAlices }));
    if (response.statusCode === 200) expect(response.json<Results>().data).toEqual([]);
    else expectProblem(response, 404, 'not_found');

    // Bob is in all three; after leaving the group he no longer finds its messages.
    expect(await textsFound(tenant, 'bob', 'zebra')).toHaveLength(3);
    const left = await as(tenant, 'bob').post(`/v1/conversations/${notAlices}/members`, {
      user_ids: ['alice'],
    });
    expect(left.statusCode, left.body).toBe(200);
    expect(await textsFound(tenant, 'alice', 'zebra')).toHaveLength(2);
    const leave = await as(tenant, 'bob').post(`/v1/conversations/${shared}/leave`);
    expect(leave.statusCode, leave.body).toBe(204);
    expect((await textsFound(tenant, 'bob', 'zebra')).sort()).toEqual([
      'zebra in the open channel',
      'zebra secrets',
    ]);
  });

  it('never matches deleted messages, thread replies included', async () => {
    const { tenant, group } = await groupOfTwo();
    const root = await send(tenant, 'bob', group, 'ephemeral root');
    const reply = await send(tenant, 'bob', group, 'ephemeral reply', root.id);
    const gone = await send(tenant, 'bob', group, 'ephemeral secret');
    expect(await textsFound(tenant, 'alice', 'ephemeral')).toHaveLength(3);

    for (const id of [reply.id, gone.id]) {
      const deleted = await as(tenant, 'bob').delete(`/v1/messages/${id}`);
      expect(deleted.statusCode, deleted.body).toBe(204);
    }
    expect(await textsFound(tenant, 'alice', 'ephemeral')).toEqual(['ephemeral root']);
    expect(await textsFound(tenant, 'alice', 'secret')).toEqual([]);
  });

  it('finds the edited text, not the old one', async () => {
    const { tenant, group } = await groupOfTwo();
    const message = await send(tenant, 'bob', group, 'original wording banana');
    const edited = await as(tenant, 'bob').patch(`/v1/messages/${message.id}`, {
      text: 'changed wording cherry',
    });
    expect(edited.statusCode, edited.body).toBe(200);
    expect(await textsFound(tenant, 'alice', 'banana')).toEqual([]);
    expect(await textsFound(tenant, 'alice', 'cherry')).toEqual(['changed wording cherry']);
    expect(await textsFound(tenant, 'alice', 'wording')).toEqual(['changed wording cherry']);
  });
});

describe('scripts without spaces', () => {
  it('finds Chinese and Japanese text by a substring of two or more characters', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, '我们明天去北京开会');
    await send(tenant, 'bob', group, '明日は東京で会議があります');
    await send(tenant, 'bob', group, 'コーヒーを飲みたい');
    await send(tenant, 'bob', group, '上海天气很好');

    expect(await textsFound(tenant, 'alice', '北京')).toEqual(['我们明天去北京开会']);
    expect(await textsFound(tenant, 'alice', '明天去')).toEqual(['我们明天去北京开会']);
    expect(await textsFound(tenant, 'alice', '東京')).toEqual(['明日は東京で会議があります']);
    expect(await textsFound(tenant, 'alice', '会議')).toEqual(['明日は東京で会議があります']);
    expect(await textsFound(tenant, 'alice', 'コーヒー')).toEqual(['コーヒーを飲みたい']);
    expect(await textsFound(tenant, 'alice', '广州')).toEqual([]);

    const [hit] = (await search(tenant, 'alice', { q: '北京' })).data;
    expect(hit?.highlight).toContain('<mark>北京</mark>');
  });
});

describe('highlight', () => {
  it('marks the match and HTML-escapes the text around it', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'ship it now & "then" it\'s done, 5 > 3');
    await send(tenant, 'bob', group, '<script>alert(1)</script>我们去北京开会<img src=x>');

    const [word] = (await search(tenant, 'alice', { q: 'ship' })).data;
    expect(word?.highlight).toContain('<mark>ship</mark>');
    expect(word?.highlight).toContain('&amp;');
    expect(word?.highlight.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/);

    const [substring] = (await search(tenant, 'alice', { q: '北京' })).data;
    expect(substring?.highlight).toContain('<mark>北京</mark>');
    expect(substring?.highlight).toContain('&lt;script&gt;');
    expect(substring?.highlight).toContain('&lt;img src=x&gt;');
    expect(substring?.highlight.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/);
  });

  it('cuts a snippet of long words to 1,000 characters, its marks closed', async () => {
    const { tenant, group } = await groupOfTwo();
    // ts_headline's 35 words, each 200 characters of quotes (escaped six times longer), the match among them.
    const long = (index: number) => `w${index}${'"'.repeat(199)}`;
    const words = Array.from({ length: 40 }, (_, index) => (index === 3 ? 'deploy' : long(index)));
    await send(tenant, 'bob', group, words.join(' '));

    const [hit] = (await search(tenant, 'alice', { q: 'deploy' })).data;
    expect(hit?.highlight).toContain('<mark>deploy</mark>');
    const text = (hit?.highlight ?? '').replace(/<\/?mark>/g, '').replaceAll('&quot;', '"');
    expect(Array.from(text).length).toBeLessThanOrEqual(1000);
    expect(text.endsWith('…')).toBe(true);
    expect((hit?.highlight.match(/<mark>/g) ?? []).length).toBe(
      (hit?.highlight.match(/<\/mark>/g) ?? []).length,
    );
  });

  it('keeps text that looks like HTML tags, escaped, around a word match', async () => {
    const { tenant, group } = await groupOfTwo();
    const text = 'please <b>deploy</b> now';
    await send(tenant, 'bob', group, text);

    const [hit] = (await search(tenant, 'alice', { q: 'deploy' })).data;
    // The message itself is returned as written...
    expect(hit?.message.text).toBe(text);
    expect(hit?.highlight).toContain('<mark>deploy</mark>');
    expect(hit?.highlight.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/);
    // ...and so is the snippet: what the user wrote, escaped, not with the tag-like parts dropped.
    expect(hit?.highlight).toContain('please &lt;b&gt;<mark>deploy</mark>&lt;/b&gt;');
  });

  it('marks exactly the matched characters of a substring match', async () => {
    const { tenant, group } = await groupOfTwo();
    // 'İ' lower-cases to two UTF-16 units ('i̇'): positions in the lower-cased text are not positions in the text.
    await send(tenant, 'bob', group, 'İİ我们去北京开会');
    const [hit] = (await search(tenant, 'alice', { q: '北京' })).data;
    expect(hit?.message.text).toBe('İİ我们去北京开会');
    expect(hit?.highlight).toBe('İİ我们去<mark>北京</mark>开会');
  });

  it('shows a short message whole in its snippet', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'we ship at 10:30 tomorrow');
    await send(tenant, 'bob', group, 'if 5 > 3 then deploy it today');

    const [ship] = (await search(tenant, 'alice', { q: 'ship' })).data;
    expect(ship?.highlight).toBe('we <mark>ship</mark> at 10:30 tomorrow');
    const [deploy] = (await search(tenant, 'alice', { q: 'deploy' })).data;
    expect(deploy?.highlight).toBe('if 5 &gt; 3 then <mark>deploy</mark> it today');
  });
});

describe('filters', () => {
  it('narrows by conversation and by sender', async () => {
    const tenant = await tenantWithUsers('alice', 'bob', 'carol');
    const first = await createConversation(tenant, 'alice', { type: 'group', members: ['bob', 'carol'] });
    const second = await createConversation(tenant, 'alice', { type: 'group', members: ['bob'] });
    const byAlice = await send(tenant, 'alice', first, 'guava from alice');
    const byBob = await send(tenant, 'bob', first, 'guava from bob');
    const byBobElsewhere = await send(tenant, 'bob', second, 'guava from bob, elsewhere');
    const byCarol = await send(tenant, 'carol', first, 'guava from carol');

    const ids = async (params: Record<string, string>) =>
      (await search(tenant, 'alice', { q: 'guava', ...params })).data.map((hit) => hit.message.id).sort();
    expect(await ids({})).toEqual([byAlice.id, byBob.id, byBobElsewhere.id, byCarol.id].sort());
    expect(await ids({ conversation_id: first })).toEqual([byAlice.id, byBob.id, byCarol.id].sort());
    expect(await ids({ conversation_id: second })).toEqual([byBobElsewhere.id]);
    expect(await ids({ sender_id: 'bob' })).toEqual([byBob.id, byBobElsewhere.id].sort());
    expect(await ids({ sender_id: 'bob', conversation_id: first })).toEqual([byBob.id]);
    expect(await ids({ sender_id: 'nobody' })).toEqual([]);
    // No message has attachments, so asking for some finds nothing; asking for none filters nothing.
    expect(await ids({ has_attachments: 'true' })).toEqual([]);
    expect(await ids({ has_attachments: 'false' })).toEqual(await ids({}));
  });

  it('narrows by time with since and until', async () => {
    const { tenant, group } = await groupOfTwo();
    const sent: MessageBody[] = [];
    for (let index = 1; index <= 4; index++) {
      sent.push(await send(tenant, 'bob', group, `mango number ${index}`));
      await sleep(15);
    }
    const found = await search(tenant, 'alice', { q: 'mango' });
    const createdAt = new Map(found.data.map((hit) => [hit.message.id, hit.message.created_at]));
    const at = (index: number) => {
      const value = createdAt.get(sent[index]?.id ?? '');
      if (value === undefined) throw new Error(`message ${index} was not found`);
      return Date.parse(value);
    };
    const iso = (ms: number) => new Date(ms).toISOString();
    const between = (index: number) => iso(Math.floor((at(index) + at(index + 1)) / 2));
    const ids = async (params: Record<string, string>) =>
      (await search(tenant, 'alice', { q: 'mango', ...params })).data.map((hit) => hit.message.id).sort();
    const idsOf = (...indexes: number[]) => indexes.map((index) => sent[index]?.id).sort();

    expect(new Set(sent.map((_, index) => at(index))).size).toBe(4);
    // since is inclusive of its instant.
    expect(await ids({ since: iso(at(1)) })).toEqual(idsOf(1, 2, 3));
    expect(await ids({ since: between(1) })).toEqual(idsOf(2, 3));
    expect(await ids({ until: between(1) })).toEqual(idsOf(0, 1));
    expect(await ids({ since: between(0), until: between(2) })).toEqual(idsOf(1, 2));
    expect(await ids({ since: iso(at(3) + 1000) })).toEqual([]);
    expect(await ids({ since: between(2), until: between(0) })).toEqual([]);

    const bad = await as(tenant, 'alice').get(searchUrl({ q: 'mango', since: 'yesterday' }));
    const problem = expectProblem(bad, 400, 'validation_failed') as Problem;
    expect((problem.errors ?? []).map((error) => error.path)).toContain('/querystring/since');
  });
});

describe('paging', () => {
  it('follows next_cursor through every match exactly once, best first', async () => {
    const { tenant, group } = await groupOfTwo();
    const texts = ['papaya', 'papaya papaya papaya', 'one papaya', 'papaya papaya', 'another papaya'];
    const sent: MessageBody[] = [];
    for (const text of texts) sent.push(await send(tenant, 'bob', group, text));
    await send(tenant, 'bob', group, 'not a match');

    const whole = await search(tenant, 'alice', { q: 'papaya' });
    expect(whole.data).toHaveLength(5);
    expect(whole.next_cursor).toBeNull();
    expect(whole.data[0]?.message.text).toBe('papaya papaya papaya');

    const seen = await pageThrough(tenant, 'alice', 'papaya', 2);
    expect(seen.pages).toBe(3);
    expect(new Set(seen.ids).size).toBe(seen.ids.length);
    expect(seen.ids).toEqual(whole.data.map((hit) => hit.message.id));
    expect([...seen.ids].sort()).toEqual(sent.map((message) => message.id).sort());
  });

  it('pages through equal ranks and substring matches too', async () => {
    const { tenant, group } = await groupOfTwo();
    const same: string[] = [];
    const chinese: string[] = [];
    for (let index = 0; index < 5; index++) {
      same.push((await send(tenant, 'bob', group, 'lychee')).id);
      chinese.push((await send(tenant, 'bob', group, `第${index}次去北京开会`)).id);
    }
    const lychee = await pageThrough(tenant, 'alice', 'lychee', 2);
    expect(lychee.pages).toBe(3);
    // Equal ranks: newest first, by id.
    expect(lychee.ids).toEqual([...same].reverse());
    const beijing = await pageThrough(tenant, 'alice', '北京', 2);
    expect(beijing.pages).toBe(3);
    expect(new Set(beijing.ids).size).toBe(5);
    expect([...beijing.ids].sort()).toEqual([...chinese].sort());
    const single = await pageThrough(tenant, 'alice', '北京', 1);
    expect(single.ids).toEqual(beijing.ids);
  });

  it('rejects a forged cursor and a missing or bad query with 400', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'papaya');
    const someId = '019a9b70-1c2d-7e3f-8a4b-5c6d7e8f9a0b';
    const forged = [
      b64('["abc","not-a-uuid"]'),
      b64('[1]'),
      b64('["0.5"]'),
      b64(`["0.5","${someId}","extra"]`),
      b64('["0.5","not-a-uuid"]'),
      b64(`["abc","${someId}"]`),
      b64(`["", "${someId}"]`),
      b64(`["Infinity","${someId}"]`),
      b64('{"rank":1}'),
      b64('not json'),
      '!!!',
    ];
    for (const cursor of forged) {
      const response = await as(tenant, 'alice').get(searchUrl({ q: 'papaya', cursor }));
      const problem = expectProblem(response, 400, 'validation_failed') as Problem;
      expect(
        (problem.errors ?? []).map((error) => error.path),
        Buffer.from(cursor, 'base64url').toString(),
      ).toContain('/querystring/cursor');
    }

    const cases: [string, string][] = [
      ['/v1/search/messages', '/querystring/q'],
      [searchUrl({ q: 'papaya', cursor: '' }), '/querystring/cursor'],
      [searchUrl({ q: '' }), '/querystring/q'],
      [searchUrl({ q: 'papaya', limit: '0' }), '/querystring/limit'],
      [searchUrl({ q: 'papaya', limit: '201' }), '/querystring/limit'],
      [searchUrl({ q: 'papaya', conversation_id: 'nope' }), '/querystring/conversation_id'],
      [searchUrl({ q: 'papaya', has_attachments: 'maybe' }), '/querystring/has_attachments'],
      [searchUrl({ q: 'papaya', color: 'red' }), '/querystring/color'],
    ];
    for (const [url, path] of cases) {
      const response = await as(tenant, 'alice').get(url);
      const problem = expectProblem(response, 400, 'validation_failed') as Problem;
      expect(
        (problem.errors ?? []).map((error) => error.path),
        url,
      ).toContain(path);
    }
  });

  it('rejects a cursor whose rank is a number no search rank can be, with 400 rather than 500', async () => {
    const { tenant, group } = await groupOfTwo();
    await send(tenant, 'bob', group, 'papaya');
    const someId = '019a9b70-1c2d-7e3f-8a4b-5c6d7e8f9a0b';
    // Finite JavaScript numbers, but outside the range of the real (float4) that ranks are compared as.
    for (const rank of ['1e39', '-1e39', '3.5e38', '1e-60']) {
      const cursor = b64(`["${rank}","${someId}"]`);
      const response = await as(tenant, 'alice').get(searchUrl({ q: 'papaya', cursor }));
      expect(response.statusCode, `rank ${rank}: ${response.body}`).toBe(400);
      const problem = expectProblem(response, 400, 'validation_failed') as Problem;
      expect((problem.errors ?? []).map((error) => error.path)).toContain('/querystring/cursor');
    }
  });
});
