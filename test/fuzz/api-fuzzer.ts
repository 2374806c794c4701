import fc from 'fast-check';
import { ERROR_CODES } from '../../src/errors.ts';
import type { App } from '../../src/http/app-types.ts';
import { ODD_CURSORS, ODD_SEARCH, oddText, oddValue } from './odd-values.ts';
import { fuzzedValue, validValue, type JsonSchema, type Pools } from './schema-arbitrary.ts';
import { createFuzzWorld, type FuzzWorld } from './world.ts';

/** One operation of the OpenAPI document, as the fuzzer needs it. */
interface Operation {
  method: string;
  path: string;
  parameters: { in: 'path' | 'query' | 'header'; name: string; required?: boolean; schema: JsonSchema }[];
  body: JsonSchema | undefined;
  /** Who may call it, from `security`: the first scheme named. */
  caller: 'none' | 'operator' | 'backend' | 'tenant';
}

/** A request as the fuzzer sends it, replayable as a regression case. */
export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

/** A request that broke a rule: a 5xx, a 4xx that is not a problem document, or an exception. */
export interface Finding {
  request: FuzzRequest;
  status: number | 'exception';
  body: string;
}

interface OpenApi {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: Operation['parameters'];
        requestBody?: { content?: Record<string, { schema: JsonSchema }> };
        security?: Record<string, unknown>[];
      }
    >
  >;
}

/** Every operation the app documents. */
export function operationsOf(app: App): Operation[] {
  const document = app.swagger() as unknown as OpenApi;
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, spec] of Object.entries(methods)) {
      const schemes = (spec.security ?? []).flatMap((entry) => Object.keys(entry));
      const caller = schemes.includes('operatorToken')
        ? 'operator'
        : schemes.includes('userToken')
          ? 'tenant'
          : schemes.includes('apiKey')
            ? 'backend'
            : 'none';
      operations.push({
        method: method.toUpperCase(),
        path,
        parameters: spec.parameters ?? [],
        body: spec.requestBody?.content?.['application/json']?.schema,
        caller,
      });
    }
  }
  return operations;
}

/** A path segment or query value, percent-encoded; text that is no valid UTF-16 goes as raw bytes. */
function encodePart(value: unknown): string {
  const text = typeof value === 'string' ? value : value === undefined ? 'undefined' : JSON.stringify(value);
  try {
    return encodeURIComponent(text);
  } catch {
    return [...Buffer.from(text, 'utf16le')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
  }
}

/** Raw percent sequences that decode to invalid UTF-8, NUL or a slash. */
const RAW_SEGMENTS = fc.constantFrom('%ff', '%c0%80', '%ed%a0%80', '%00', '%2f', '%2e%2e', '%', '%zz');

function poolsOf(world: FuzzWorld): Pools {
  const { tenantIds, keyIds, userIds, conversationIds, messageIds } = world.pools;
  const emoji = fc.constantFrom('👍', ':thumbsup:', '❤️', '👨‍👩‍👧‍👦', ':a:', '::', 'x');
  const byName: Record<string, readonly string[] | fc.Arbitrary<string>> = {
    tenant_id: tenantIds,
    key_id: keyIds,
    user_id: userIds,
    user_ids: userIds,
    members: userIds,
    to: userIds,
    sender_id: userIds,
    conversation_id: conversationIds,
    message_id: messageIds,
    thread_root_id: messageIds,
    around: messageIds,
    emoji,
    cursor: fc.constantFrom(...ODD_CURSORS),
    since: fc.constantFrom(...ODD_CURSORS),
    q: fc.constantFrom(...ODD_SEARCH, 'deploy', 'release notes', 'hello'),
  };
  return (name) => {
    const pool = byName[name];
    if (pool === undefined) return undefined;
    return pool instanceof fc.Arbitrary ? pool : fc.constantFrom(...pool);
  };
}

/** The Authorization (and X-Parley-User) a request carries: the right caller's, or (`isWrong`) not. */
function authOf(
  operation: Operation,
  world: FuzzWorld,
  adminToken: string,
  isWrong: boolean,
): fc.Arbitrary<Record<string, string>> {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const right: fc.Arbitrary<Record<string, string>> =
    operation.caller === 'operator'
      ? fc.constant(bearer(adminToken))
      : operation.caller === 'backend'
        ? fc.constant(bearer(world.apiKey.secret))
        : fc.oneof(
            { weight: 4, arbitrary: fc.constant(bearer(world.userToken)) },
            { weight: 1, arbitrary: fc.constant(bearer(world.apiKey.secret)) },
            {
              weight: 2,
              arbitrary: fc
                .constantFrom(...world.pools.userIds)
                .map((user) => ({ ...bearer(world.apiKey.secret), 'x-parley-user': user })),
            },
            {
              weight: 1,
              arbitrary: oddText.map((user) => ({ ...bearer(world.apiKey.secret), 'x-parley-user': user })),
            },
          );
  const wrong = fc.oneof(
    fc.constantFrom(...world.forgedTokens).map(bearer),
    oddText.map((token) => ({ authorization: `Bearer ${token}` })),
    oddText.map((value) => ({ authorization: value })),
    fc.constant(bearer(`psk_${'A'.repeat(60)}`)),
    fc.constant({}),
  );
  return isWrong ? wrong : right;
}

/** Headers every route reads or should ignore: idempotency keys, request ids, content types. */
/** `arbitrary` one time in `every`, undefined otherwise. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, every: number) =>
  fc.oneof({ weight: every - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
const optional = <T>(arbitrary: fc.Arbitrary<T>) => sometimes(arbitrary, 2);
const extraHeaders: fc.Arbitrary<Record<string, string>> = fc
  .record({
    'idempotency-key': optional(fc.oneof(fc.uuid(), oddText)),
    'x-request-id': optional(oddText),
    'content-type': optional(
      fc.constantFrom(
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/problem+json',
        '',
      ),
    ),
  })
  .map((headers) =>
    Object.fromEntries(
      Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined),
    ),
  );

/** A wrong body as text. */
function payloadOf(operation: Operation, pools: Pools): fc.Arbitrary<string | undefined> {
  const value = operation.body === undefined ? oddValue : fuzzedValue(operation.body, 'body', pools);
  // Always wrong: a mutated value, or text no JSON parser should accept.
  const json = value.map((body) => JSON.stringify(body));
  const broken = fc.constantFrom(
    '{',
    '{"text":',
    '{"a":1,"a":2}',
    '\u0000',
    '{"text":"\\ud800"}',
    '{"text":"\\u0000"}',
    '{"text":1e999}',
    '{"__proto__":{"isAdmin":true}}',
    '{"constructor":{"prototype":{"x":1}}}',
    `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`,
    // Deeper than a generated value can be (the generator's own stack): a deep field in a valid-looking body.
    `{"text":"x","name":"x","metadata":{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
    `{"text":"x","name":"x","metadata":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`,
    '',
  );
  return fc.oneof({ weight: 5, arbitrary: json }, { weight: 1, arbitrary: broken });
}

/** The parts of a request the fuzzer can make wrong, one at a time. */
type Part =
  { kind: 'none' | 'body' | 'auth' | 'headers' | 'extra-query' } | { kind: 'path' | 'query'; name: string };

/**
 * Every request the fuzzer may send to one operation: valid in every part but at most one, which is wrong
 * (a request wrong everywhere stops at the first check and tests nothing behind it).
 */
function requestsOf(operation: Operation, world: FuzzWorld, adminToken: string): fc.Arbitrary<FuzzRequest> {
  const pools = poolsOf(world);
  const pathParameters = operation.parameters.filter((parameter) => parameter.in === 'path');
  const queryParameters = operation.parameters.filter((parameter) => parameter.in === 'query');
  const parts: Part[] = [
    { kind: 'none' },
    { kind: 'auth' },
    { kind: 'headers' },
    { kind: 'extra-query' },
    ...(operation.body === undefined ? [] : [{ kind: 'body' as const }, { kind: 'body' as const }]),
    ...pathParameters.map((parameter) => ({ kind: 'path' as const, name: parameter.name })),
    ...queryParameters.map((parameter) => ({ kind: 'query' as const, name: parameter.name })),
  ];
  const valid = (name: string, schema: JsonSchema) => validValue(schema, name, pools).map(encodePart);
  const wrong = (name: string, schema: JsonSchema) =>
    fc.oneof(
      { weight: 4, arbitrary: fuzzedValue(schema, name, pools).map(encodePart) },
      { weight: 2, arbitrary: oddText.map(encodePart) },
      { weight: 1, arbitrary: RAW_SEGMENTS },
    );
  const isTarget = (target: Part, kind: Part['kind'], name?: string) =>
    target.kind === kind && (name === undefined || ('name' in target && target.name === name));

  return fc.constantFrom(...parts).chain((target) => {
    const path = fc.record(
      Object.fromEntries(
        pathParameters.map((parameter) => [
          parameter.name,
          (isTarget(target, 'path', parameter.name) ? wrong : valid)(parameter.name, parameter.schema),
        ]),
      ),
    );
    const query = fc.record(
      Object.fromEntries(
        queryParameters.map((parameter) => [
          parameter.name,
          (isTarget(target, 'query', parameter.name) ? wrong : valid)(parameter.name, parameter.schema),
        ]),
      ),
      {
        requiredKeys: queryParameters
          .filter((parameter) => parameter.required === true || isTarget(target, 'query', parameter.name))
          .map((parameter) => parameter.name),
      },
    );
    // A parameter given twice, or one the route does not know.
    const extra = isTarget(target, 'extra-query')
      ? fc.tuple(
          fc.constantFrom('limit', 'cursor', 'q', 'since', 'unknown', ...queryParameters.map((p) => p.name)),
          oddText.map(encodePart),
        )
      : fc.constant(undefined);
    const body =
      operation.body === undefined
        ? fc.constant(undefined)
        : isTarget(target, 'body')
          ? payloadOf(operation, pools)
          : validValue(operation.body, 'body', pools).map((value) => JSON.stringify(value));
    return fc
      .record({
        path,
        query,
        extra,
        auth: authOf(operation, world, adminToken, isTarget(target, 'auth')),
        headers: isTarget(target, 'headers') ? extraHeaders : fc.constant<Record<string, string>>({}),
        payload: body,
      })
      .map(({ path: segments, query: named, extra: added, auth, headers, payload }) => {
        const url = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => segments[name] ?? '');
        const pairs = Object.entries(named).map(([name, value]) => `${name}=${value}`);
        if (added !== undefined) pairs.push(`${added[0]}=${added[1]}`);
        const contentType: Record<string, string> =
          payload === undefined ? {} : { 'content-type': 'application/json' };
        return {
          method: operation.method,
          url: pairs.length > 0 ? `${url}?${pairs.join('&')}` : url,
          headers: { ...contentType, ...headers, ...auth },
          ...(payload === undefined ? {} : { payload }),
        };
      });
  });
}

const PROBLEM_CODES = new Set(Object.keys(ERROR_CODES));

/**
 * Sends one request; a finding when it answers 5xx, answers 4xx without a problem document (a HEAD: without
 * the problem type), or throws.
 */
export async function sendFuzzRequest(
  app: App,
  request: FuzzRequest,
): Promise<{ finding: Finding | null; status: number | 'exception' }> {
  let response;
  try {
    response = await app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.headers,
      ...(request.payload === undefined ? {} : { payload: request.payload }),
    });
  } catch (error) {
    return { finding: { request, status: 'exception', body: String(error) }, status: 'exception' };
  }
  const status = response.statusCode;
  const found = (body: string) => ({ finding: { request, status, body }, status });
  if (status >= 500) return found(response.body.slice(0, 500));
  if (status >= 400) {
    let code: unknown;
    try {
      code = (JSON.parse(response.body) as { code?: unknown }).code;
    } catch {
      code = undefined;
    }
    const isProblem = String(response.headers['content-type']).startsWith('application/problem+json');
    // A HEAD answer never has a body (HTTP): its type says what a GET of it would carry.
    if (request.method === 'HEAD' && isProblem) return { finding: null, status };
    if (!isProblem || typeof code !== 'string' || !PROBLEM_CODES.has(code)) {
      return found(`not a problem document: ${response.body.slice(0, 300)}`);
    }
  }
  return { finding: null, status };
}

export interface FuzzOptions {
  app: App;
  adminToken: string;
  seed: number;
  /** Requests in all, spread evenly over the operations. */
  runs: number;
  /** Requests per fresh world (the fuzzer erases users, revokes its key, deletes its tenant). */
  worldSize?: number;
  onProgress?: (sent: number, findings: number) => void;
}

/**
 * Sends `runs` generated requests, round robin over every documented operation, each world of
 * `worldSize` requests on a fresh tenant. Deterministic for a seed, up to the ids the server creates.
 */
export async function fuzzApi(
  options: FuzzOptions,
): Promise<{ sent: number; findings: Finding[]; statuses: Map<number | 'exception', number> }> {
  const { app, adminToken, seed, runs, worldSize = 150 } = options;
  const operations = operationsOf(app);
  const findings: Finding[] = [];
  const statuses = new Map<number | 'exception', number>();
  let sent = 0;
  for (let batch = 0; sent < runs; batch++) {
    const world = await createFuzzWorld(app, adminToken);
    const count = Math.min(worldSize, runs - sent);
    const perOperation = Math.ceil(count / operations.length);
    const samples = operations.map((operation, index) =>
      fc.sample(requestsOf(operation, world, adminToken), {
        seed: seed + batch * 1009 + index,
        numRuns: perOperation,
      }),
    );
    for (let round = 0; round < perOperation && sent < runs; round++) {
      for (const requests of samples) {
        const request = requests[round];
        if (request === undefined || sent >= runs) continue;
        const { finding, status } = await sendFuzzRequest(app, request);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        sent++;
        if (finding !== null) findings.push(finding);
      }
    }
    options.onProgress?.(sent, findings.length);
  }
  return { sent, findings, statuses };
}
