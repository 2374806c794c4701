import { SignJWT } from 'jose';
import type { App } from '../../src/http/app-types.ts';

/** What the fuzzer's requests act on: one fresh tenant with users, conversations and messages. */
export interface FuzzWorld {
  tenantId: string;
  apiKey: { id: string; secret: string };
  /** The user the fuzzer acts as (never erased by it: no pool names it). */
  userToken: string;
  /** Tokens signed with the tenant's own key whose claims or header are of the wrong shape. */
  forgedTokens: string[];
  pools: {
    tenantIds: string[];
    keyIds: string[];
    userIds: string[];
    conversationIds: string[];
    messageIds: string[];
  };
}

/** The user the fuzzer acts as. Kept out of every pool, so the fuzzer cannot erase or remove itself. */
export const FUZZ_ACTOR = 'fuzz-actor';
const FRIENDS = ['fuzz-alice', 'fuzz-bob', 'fuzz-carol'];

type Json = Record<string, unknown>;

async function call(app: App, method: string, url: string, auth: Json, body?: unknown): Promise<Json> {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  if (response.statusCode >= 300) {
    throw new Error(`seeding ${method} ${url} answered ${response.statusCode}: ${response.body}`);
  }
  return response.body === '' ? {} : (JSON.parse(response.body) as Json);
}

/** Forged user tokens: the real key signs them, so only their claims decide how they are refused. */
async function forgeTokens(keyId: string, secret: string): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  const now = Math.floor(Date.now() / 1000);
  const claims: Json[] = [
    { sub: 42, exp: now + 600 },
    { sub: { id: FUZZ_ACTOR }, exp: now + 600 },
    { sub: [FUZZ_ACTOR], exp: now + 600 },
    { sub: '', exp: now + 600 },
    { sub: 'x'.repeat(500), exp: now + 600 },
    { sub: 'a\u0000b', exp: now + 600 },
    { sub: FUZZ_ACTOR, exp: String(now + 600) },
    { sub: FUZZ_ACTOR, exp: 1e20 },
    { sub: FUZZ_ACTOR, exp: -1 },
    { sub: FUZZ_ACTOR, exp: now + 600.5 },
    { sub: FUZZ_ACTOR, exp: now + 100 * 365 * 86_400 },
    { sub: FUZZ_ACTOR },
    { sub: FUZZ_ACTOR, exp: now + 600, nbf: 'soon' },
    { sub: FUZZ_ACTOR, exp: now + 600, iat: { when: 'now' } },
    { sub: FUZZ_ACTOR, exp: now + 600, nbf: 1e20 },
  ];
  const tokens = await Promise.all(
    claims.map((payload) => new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: keyId }).sign(key)),
  );
  const header = (value: Json) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = header({ sub: FUZZ_ACTOR, exp: now + 600 });
  // Headers the signature cannot vouch for: a kid of the wrong type, another algorithm, none at all.
  tokens.push(
    `${header({ alg: 'HS256', kid: 7 })}.${body}.sig`,
    `${header({ alg: 'HS256', kid: [keyId] })}.${body}.sig`,
    `${header({ alg: 'none', kid: keyId })}.${body}.`,
    `${header({ alg: 'RS256', kid: keyId })}.${body}.c2ln`,
    `${header({ alg: 'HS256', kid: keyId, crit: ['exp'] })}.${body}.sig`,
    `${header({ alg: 'HS256', kid: keyId, b64: false })}.${body}.sig`,
  );
  return tokens;
}

/** Creates a fresh world through the API, as a tenant backend and its users would. */
export async function createFuzzWorld(app: App, adminToken: string): Promise<FuzzWorld> {
  const operator = { authorization: `Bearer ${adminToken}` };
  const created = await call(app, 'POST', '/v1/admin/tenants', operator, { name: 'fuzz' });
  const tenantId = (created.tenant as Json).id as string;
  const apiKey = created.api_key as { id: string; secret: string };
  // The operator routes act on a tenant of their own: deleting the world's tenant or revoking its key would
  // leave every later request of the world a 401.
  const victim = await call(app, 'POST', '/v1/admin/tenants', operator, { name: 'fuzz-victim' });
  const victimId = (victim.tenant as Json).id as string;
  const victimKeyId = (victim.api_key as Json).id as string;
  const backend = { authorization: `Bearer ${apiKey.secret}` };
  const as = (userId: string) => ({ ...backend, 'x-parley-user': userId });

  for (const userId of [FUZZ_ACTOR, ...FRIENDS]) {
    await call(app, 'PUT', `/v1/users/${userId}`, backend, { name: userId });
  }
  const minted = await call(app, 'POST', `/v1/users/${FUZZ_ACTOR}/tokens`, backend);
  const actor = as(FUZZ_ACTOR);
  const conversation = async (auth: Json, body: Json) =>
    (await call(app, 'POST', '/v1/conversations', auth, body)).id as string;
  const group = await conversation(actor, { type: 'group', name: 'g', members: FRIENDS });
  const channel = await conversation(actor, { type: 'channel', name: 'c' });
  const direct = await conversation(actor, { type: 'direct', members: [FRIENDS[0]] });
  // Not the actor's: its ids must answer 404, whatever else is wrong with the request.
  const hidden = await conversation(as(FRIENDS[1] ?? ''), { type: 'group', name: 'h' });

  const messageIds: string[] = [];
  const send = async (auth: Json, conversationId: string, body: Json) => {
    const sent = await call(app, 'POST', `/v1/conversations/${conversationId}/messages`, auth, body);
    messageIds.push(sent.id as string);
    return sent.id as string;
  };
  const root = await send(actor, group, { text: 'hello @fuzz-alice' });
  await send(as(FRIENDS[0] ?? ''), group, { text: 'reply', thread_root_id: root });
  await send(as(FRIENDS[1] ?? ''), group, { text: 'deploy notes for release' });
  await send(actor, channel, { text: 'channel news' });
  await send(actor, direct, { text: 'just us' });
  await send(as(FRIENDS[1] ?? ''), hidden, { text: 'secret' });
  await call(app, 'PUT', `/v1/messages/${root}/reactions/${encodeURIComponent('👍')}`, as(FRIENDS[0] ?? ''));

  return {
    tenantId,
    apiKey,
    userToken: minted.token as string,
    forgedTokens: await forgeTokens(apiKey.id, apiKey.secret),
    pools: {
      tenantIds: [victimId],
      keyIds: [victimKeyId],
      userIds: FRIENDS,
      conversationIds: [group, channel, direct, hidden],
      messageIds,
    },
  };
}
