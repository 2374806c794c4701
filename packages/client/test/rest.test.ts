import { describe, expect, it } from 'vitest';
import { ParleyClient, ParleyError } from '../src/node.ts';
import { tenantWith, useServer } from './helpers.ts';

// The REST half of the SDK against a real server: typed calls, the credential, idempotency keys and
// client_msg_id set for the caller, retries that never do a thing twice, and refusals as typed errors.

const server = useServer();

describe('the REST client', () => {
  it('calls routes typed from the document, with a user token and as a backend acting as a user', async () => {
    const { tenant, token } = await tenantWith(server.t, 'alice', 'bob');
    const alice = new ParleyClient({ baseUrl: server.url(), token: await token('alice') });
    const me = await alice.get('/v1/me');
    expect(me.id).toBe('alice');

    const group = await alice.post('/v1/conversations', {
      body: { type: 'group', name: 'sdk', members: ['bob'] },
    });
    expect(group).toMatchObject({ type: 'group', name: 'sdk', member_count: 2 });

    // The backend, with its api key, acting as bob.
    const backend = new ParleyClient({ baseUrl: server.url(), token: tenant.apiKey.secret, actAs: 'bob' });
    const page = await backend.get('/v1/conversations');
    expect(page.data.map((c) => c.id)).toEqual([group.id]);
  });

  it('gives every message a client_msg_id and every write an Idempotency-Key', async () => {
    const { token } = await tenantWith(server.t, 'alice', 'bob');
    const seen: Request[] = [];
    const alice = new ParleyClient({
      baseUrl: server.url(),
      token: await token('alice'),
      fetch: (request) => {
        seen.push((request as Request).clone());
        return fetch(request);
      },
    });
    const dm = await alice.post('/v1/direct-messages', { body: { to: 'bob', text: 'hello' } });
    const sent = await alice.post('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: dm.conversation_id } },
      body: { text: 'second' },
    });
    expect(dm.client_msg_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.client_msg_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.client_msg_id).not.toBe(dm.client_msg_id);
    // A caller's own client_msg_id is kept.
    const own = await alice.post('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: dm.conversation_id } },
      body: { text: 'third', client_msg_id: 'mine-1' },
    });
    expect(own.client_msg_id).toBe('mine-1');
    const keys = seen.map((request) => request.headers.get('idempotency-key'));
    expect(keys.every((key) => key !== null && /^[0-9a-f-]{36}$/.test(key))).toBe(true);
    expect(new Set(keys).size).toBe(3);
  });

  it('sends a write again after a lost response, and the server does it once', async () => {
    const { token } = await tenantWith(server.t, 'alice', 'bob');
    let lost = 0;
    const keys: (string | null)[] = [];
    const alice = new ParleyClient({
      baseUrl: server.url(),
      token: await token('alice'),
      retry: { backoff: { initialMs: 10, maxMs: 50 } },
      fetch: async (request) => {
        keys.push((request as Request).headers.get('idempotency-key'));
        const response = await fetch(request);
        // The first two answers to the send are lost on the way back: the server did the work.
        if ((request as Request).method === 'POST' && lost < 2) {
          lost++;
          throw new TypeError('fetch failed');
        }
        return response;
      },
    });
    const message = await alice.post('/v1/direct-messages', { body: { to: 'bob', text: 'once' } });
    expect(lost).toBe(2);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    const history = await alice.get('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: message.conversation_id } },
    });
    expect(history.data.map((m) => m.id)).toEqual([message.id]);
  });

  it('throws a refusal as a ParleyError with the problem document', async () => {
    const { token } = await tenantWith(server.t, 'alice');
    const alice = new ParleyClient({ baseUrl: server.url(), token: await token('alice') });
    const missing = await alice
      .get('/v1/conversations/{conversation_id}', {
        params: { path: { conversation_id: '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83' } },
      })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(ParleyError);
    expect(missing).toMatchObject({ code: 'not_found', status: 404, retryable: false });
    expect((missing as ParleyError).requestId).toBeTruthy();

    const invalid = await alice
      .post('/v1/conversations', { body: { type: 'group', members: ['alice', 'alice'] } })
      .then(
        () => undefined,
        (error: unknown) => error as ParleyError,
      );
    expect(invalid).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(invalid?.problem?.errors?.length).toBeGreaterThan(0);

    const refused = new ParleyClient({ baseUrl: server.url(), token: 'not-a-token' });
    await expect(refused.get('/v1/me')).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
  });

  it('asks a token function for a fresh token after a 401, once', async () => {
    const { token } = await tenantWith(server.t, 'alice');
    const issued: string[] = [];
    const alice = new ParleyClient({
      baseUrl: server.url(),
      // The first token it hands out has been revoked meanwhile (here: is not one); the next is good.
      token: async () => {
        const next = issued.length === 0 ? 'expired-token' : await token('alice');
        issued.push(next);
        return next;
      },
    });
    expect((await alice.get('/v1/me')).id).toBe('alice');
    expect(issued).toHaveLength(2);
  });

  it('reports a server it cannot reach as a network error, after its retries', async () => {
    const nowhere = new ParleyClient({
      baseUrl: 'http://127.0.0.1:9',
      token: 'x',
      retry: { attempts: 2, backoff: { initialMs: 5, maxMs: 10 } },
    });
    await expect(nowhere.get('/v1/me')).rejects.toMatchObject({ code: 'network', retryable: true });
  });
});
