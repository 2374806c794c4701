import type { FuzzRequest } from './api-fuzzer.ts';
import type { FuzzWorld } from './world.ts';

/**
 * Every request the fuzzer ever found answering 5xx (or a 4xx that was no problem document), kept as it was
 * found: each must now answer with a 4xx problem. A case names the ids it needs from a fresh world.
 */
export interface Regression {
  /** What class of input it is, and what it did before the fix. */
  name: string;
  request: (world: FuzzWorld, adminToken: string) => FuzzRequest;
}

const json = { 'content-type': 'application/json' };
const asActor = (world: FuzzWorld) => ({ authorization: `Bearer ${world.userToken}` });
const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const group = (world: FuzzWorld) => world.pools.conversationIds[0] ?? '';
const message = (world: FuzzWorld) => world.pools.messageIds[0] ?? '';

export const REGRESSIONS: Regression[] = [
  {
    name: 'a body nested 100,000 deep on a route without a body schema overflowed the idempotency hash (500)',
    request: (world) => ({
      method: 'DELETE',
      url: `/v1/users/${world.pools.userIds[2] ?? ''}`,
      headers: { ...json, authorization: `Bearer ${world.apiKey.secret}`, 'idempotency-key': 'deep-1' },
      payload: `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    }),
  },
  {
    name: 'metadata nested 10,000 deep inside a valid body',
    request: (world) => ({
      method: 'POST',
      url: `/v1/conversations/${group(world)}/messages`,
      headers: { ...json, ...asActor(world) },
      payload: `{"text":"x","metadata":{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
    }),
  },
  {
    name: 'a lone surrogate (\\ud800) in message text reached jsonb on PostgreSQL (500)',
    request: (world) => ({
      method: 'POST',
      url: `/v1/conversations/${group(world)}/messages`,
      headers: { ...json, ...asActor(world) },
      payload: '{"text":"\\ud800"}',
    }),
  },
  {
    name: 'a lone surrogate in an edited text',
    request: (world) => ({
      method: 'PATCH',
      url: `/v1/messages/${message(world)}`,
      headers: { ...json, ...asActor(world) },
      payload: '{"text":"ok \\udc00"}',
    }),
  },
  {
    name: 'NUL in a metadata key',
    request: (world) => ({
      method: 'POST',
      url: `/v1/conversations/${group(world)}/messages`,
      headers: { ...json, ...asActor(world) },
      payload: '{"text":"x","metadata":{"a\\u0000b":1}}',
    }),
  },
  {
    name: 'NUL in a conversation name',
    request: (world) => ({
      method: 'PATCH',
      url: `/v1/conversations/${group(world)}`,
      headers: { ...json, ...asActor(world) },
      payload: '{"name":"a\\u0000b"}',
    }),
  },
  {
    name: 'NUL in a user search query string',
    request: (world) => ({ method: 'GET', url: '/v1/users?query=a%00b', headers: asActor(world) }),
  },
  {
    name: 'a lone surrogate in a tenant name',
    request: (_world, adminToken) => ({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: { ...json, authorization: `Bearer ${adminToken}` },
      payload: '{"name":"\\ud83d"}',
    }),
  },
  {
    name: 'a conversation-list cursor with a timestamp past year 9999 (+275760-…) answered 500 on PostgreSQL',
    request: (world) => ({
      method: 'GET',
      url: `/v1/conversations?cursor=${cursor(['+275760-09-13T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])}`,
      headers: asActor(world),
    }),
  },
  {
    name: 'a sync cursor whose snapshot PostgreSQL does not take ("0:0:") answered 500',
    request: (world) => ({
      method: 'GET',
      url: `/v1/sync?since=${cursor({ prev: '0:0:', at: Date.now() })}`,
      headers: asActor(world),
    }),
  },
  {
    name: 'a sync cursor with transaction ids past 64 bits',
    request: (world) => ({
      method: 'GET',
      url: `/v1/sync?since=${cursor({ prev: '99999999999999999999:99999999999999999999:', at: Date.now() })}`,
      headers: asActor(world),
    }),
  },
  {
    name: 'a sync cursor whose in-progress id lies outside [xmin, xmax)',
    request: (world) => ({
      method: 'GET',
      url: `/v1/sync?since=${cursor({ prev: '5:10:12', at: Date.now() })}`,
      headers: asActor(world),
    }),
  },
  {
    name: 'tus discovery with a header value no HTTP header can hold (not Latin-1) answered 500',
    request: () => ({
      method: 'OPTIONS',
      url: '/v1/uploads',
      headers: { 'upload-metadata': 'filename \u8966' },
    }),
  },
  {
    name: 'a tus creation whose Upload-Metadata is not Latin-1',
    request: (world) => ({
      method: 'POST',
      url: '/v1/uploads',
      headers: {
        ...asActor(world),
        'tus-resumable': '1.0.0',
        'upload-length': '5',
        'upload-metadata': 'filename \u8966',
      },
    }),
  },
];
