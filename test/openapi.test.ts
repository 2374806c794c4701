import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Document, Spectral } from '@stoplight/spectral-core';
import Parsers from '@stoplight/spectral-parsers';
import { oas } from '@stoplight/spectral-rulesets';
import owasp from '@stoplight/spectral-owasp-ruleset';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from './helpers/app.ts';
import { checkResponsesAgainstDocument, takeContractViolations } from './helpers/response-contract.ts';

// The OpenAPI document as the tools an integrator reaches for read it (docs/API.md, "The OpenAPI document"):
// two third-party linters, and what a client generator needs of it.

const t = useTestApp();

interface MediaType {
  schema: Record<string, unknown>;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: ({ $ref: string } | { name: string; in: string })[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<
    string,
    {
      $ref?: string;
      headers?: Record<string, unknown>;
      content?: Record<string, MediaType>;
    }
  >;
}
interface OpenApi {
  info: { version: string; license?: { identifier?: string } };
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, Record<string, unknown>>;
    responses: Record<string, { content: Record<string, unknown> }>;
  };
}

/**
 * Where the document does not follow a rule of the OWASP ruleset, and why (docs/API.md, "The OpenAPI
 * document"). Everything else it asks is done: every string, integer and array bounded, rate-limit headers
 * and 429 on every counted route, 401 and 500 documented, the token scheme's practices stated.
 */
interface OwaspException {
  rules: string[];
  /** Whether it covers a result: its path joined with dots, and the value there in the document. */
  at: (path: string, value: unknown) => boolean;
  why: string;
}
const PROBES = /^paths\.\/(healthz|readyz|metrics)\.get\./;
const UNCOUNTED =
  /^paths\.\/(healthz|readyz|metrics|v1\/admin\/[^.]*|v1\/files\/\{token\}|v1\/uploads)\.(get|post|patch|delete|options)\./;
const OWASP_EXCEPTIONS: OwaspException[] = [
  {
    rules: ['owasp:api4:2023-string-restricted'],
    at: (_path, schema) => isRecord(schema) && typeof schema.maxLength === 'number',
    why: 'free text (names, messages, topics, problem details) has a length limit but no pattern to give',
  },
  {
    rules: ['owasp:api4:2023-array-limit'],
    at: (path) =>
      /^components\.schemas\.UserExport\.properties\.(memberships|messages|reactions)$/.test(path),
    why: "a user's export holds everything kept about them, by law: as many items as they made",
  },
  {
    rules: ['owasp:api4:2023-array-limit'],
    at: (path) => path === 'components.schemas.Unread.properties.conversations',
    why: 'GET /v1/unread lists every conversation with something unread: at most the caller’s memberships',
  },
  {
    rules: ['owasp:api4:2023-array-limit'],
    at: (path) => path === 'components.schemas.ApiKeyList.properties.data',
    why: "the operator's list of one tenant's keys, revoked ones included",
  },
  {
    rules: ['owasp:api4:2023-string-limit', 'owasp:api4:2023-string-restricted'],
    at: (path) => path === 'paths./metrics.get.responses.200.content.text/plain.schema',
    why: 'the Prometheus exposition is a text format of its own, growing with the routes and series it reports',
  },
  {
    rules: ['owasp:api4:2023-rate-limit', 'owasp:api4:2023-rate-limit-responses-429'],
    at: (path) => UNCOUNTED.test(path),
    why: 'probes, the operator, signed file links and tus discovery are not counted against a caller',
  },
  {
    rules: ['owasp:api8:2023-define-error-responses-401'],
    at: (path) => PROBES.test(path) || path.startsWith('paths./v1/uploads.options.'),
    why: 'probes and tus discovery take no credential, so never answer 401',
  },
  {
    rules: ['owasp:api8:2023-define-error-responses-500'],
    at: (path) => PROBES.test(path),
    why: 'a probe reports its failure in its own answer (503 with what is down)',
  },
  {
    rules: ['owasp:api8:2023-define-error-validation'],
    at: (path) => PROBES.test(path),
    why: 'probes take no input to refuse',
  },
  {
    rules: ['owasp:api2:2023-read-restricted'],
    at: (path) => PROBES.test(path) || path.startsWith('paths./v1/files/{token}.get.'),
    why: 'probes are for the network edge to restrict; a file link is its own credential (signed, one object, short-lived)',
  },
  {
    rules: ['owasp:api2:2023-no-credentials-in-url'],
    at: (path) => path.startsWith('paths./v1/files/{token}.get.parameters'),
    why: 'a signed file link is a capability for one object until it expires, made for <img src>, like S3 presigned URLs',
  },
  {
    rules: ['owasp:api8:2023-define-cors-origin'],
    at: (path) =>
      path === 'components.schemas.PresignedUpload.properties.upload.properties.headers' ||
      path.endsWith('.example.upload.headers'),
    why: 'a false positive: `headers` there is a property of the answer (what the PUT to S3 must carry)',
  },
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
/** The value at a Spectral result's path in the document, following no $ref. */
function valueAt(doc: unknown, path: readonly (string | number)[]): unknown {
  let value: unknown = doc;
  for (const key of path)
    value = isRecord(value) ? (value as Record<string | number, unknown>)[key] : undefined;
  return value;
}

let source: string;
let document: OpenApi;
const operations: { method: string; path: string; operation: Operation }[] = [];

beforeAll(async () => {
  const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(response.statusCode).toBe(200);
  source = response.body;
  document = JSON.parse(source) as OpenApi;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) operations.push({ method, path, operation });
  }
});

describe('the OpenAPI document', () => {
  it('passes Spectral’s OpenAPI ruleset (spectral:oas) without a warning', async () => {
    const spectral = new Spectral();
    spectral.setRuleset({ extends: [oas as never] });
    const results = await spectral.run(new Document(source, Parsers.Json, 'openapi.json'));
    expect(results.map((result) => `${result.code} at ${result.path.join('.')}: ${result.message}`)).toEqual(
      [],
    );
  });

  it('passes Spectral’s OWASP API security ruleset, but for the exceptions it names with their reasons', async () => {
    const spectral = new Spectral();
    spectral.setRuleset({ extends: [owasp as never] });
    const results = await spectral.run(new Document(source, Parsers.Json, 'openapi.json'));
    const unexcused: string[] = [];
    const used = new Set<OwaspException>();
    for (const result of results) {
      const path = result.path.join('.');
      const exception = OWASP_EXCEPTIONS.find(
        (candidate) =>
          candidate.rules.includes(String(result.code)) && candidate.at(path, valueAt(document, result.path)),
      );
      if (exception === undefined) unexcused.push(`${result.code} at ${path}: ${result.message}`);
      else used.add(exception);
    }
    expect(unexcused).toEqual([]);
    // An exception nothing needs any more goes: the list says what is still not held to the rule.
    expect(OWASP_EXCEPTIONS.filter((exception) => !used.has(exception)).map((e) => e.why)).toEqual([]);
  });

  it('passes Redocly’s recommended rules without an error', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source, absoluteRef: 'openapi.json', config });
    const errors = problems.filter((problem) => problem.severity === 'error');
    expect(errors.map((problem) => `${problem.ruleId}: ${problem.message}`)).toEqual([]);
  });

  it('names every operation once, tags, summarizes and describes it', () => {
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set(document.tags.map((tag) => tag.name));
    for (const { method, path, operation } of operations) {
      expect(operation.tags?.length, `${method} ${path}`).toBe(1);
      expect(tags.has(operation.tags?.[0] ?? ''), `${method} ${path}`).toBe(true);
      expect(operation.summary, `${method} ${path}`).toBeTruthy();
      expect(operation.description, `${method} ${path}`).toBeTruthy();
    }
    expect(document.info.license?.identifier).toBe('Apache-2.0');
  });

  it('names the resources, bodies and pages a client works with, and references them', () => {
    for (const name of [
      'Message',
      'Conversation',
      'User',
      'Member',
      'HistoryPage',
      'ConversationPage',
      'SendMessageBody',
      'AttachmentView',
      'WebhookEndpoint',
      'Problem',
    ]) {
      expect(Object.keys(document.components.schemas)).toContain(name);
    }
    const send = document.paths['/v1/conversations/{conversation_id}/messages']?.post;
    expect(send?.requestBody?.content['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/SendMessageBody',
    });
    expect(send?.responses['201']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/Message',
    });
    // A page's items are the named resource too.
    expect(document.components.schemas.HistoryPage).toMatchObject({
      properties: { data: { items: { $ref: '#/components/schemas/Message' } } },
    });
  });

  it('shows an example of every request body and every successful answer with a body', () => {
    // The examples are the schemas' own (`examples` on the TypeBox schemas, which @fastify/swagger moves to
    // the media type); Spectral and Redocly above check each against its schema. Bodies with nothing worth
    // showing, by operation, status and media type, with the reason:
    const withoutExample: Record<string, string> = {
      'getFile 200 */*': 'the bytes of the file itself, of whatever type it is',
      'getFile 206 */*': 'the bytes of a range of the file',
    };
    // Answers that have no body at all need no example: a 204 (the deletes, leaveConversation, and tus'
    // OPTIONS, PATCH and DELETE), and the rest of tus (/v1/uploads: createUpload's 201 and HEAD's 200 are
    // headers only). uploadAttachment takes multipart/form-data, which has no schema to show an example of;
    // its 201 has one.
    const hasNoBody = (path: string, status: string) => status === '204' || path.startsWith('/v1/uploads');
    const lacking: string[] = [];
    for (const { method, path, operation } of operations) {
      const name = operation.operationId ?? `${method} ${path}`;
      const bodies: [string, Record<string, MediaType> | undefined][] = [
        ['request', operation.requestBody?.content],
      ];
      for (const [status, response] of Object.entries(operation.responses)) {
        if (!status.startsWith('2')) continue;
        if (response.content === undefined && !hasNoBody(path, status))
          lacking.push(`${name} ${status} (no body)`);
        bodies.push([status, response.content]);
      }
      for (const [where, content] of bodies) {
        for (const [type, media] of Object.entries(content ?? {})) {
          const shown = media.example !== undefined || Object.keys(media.examples ?? {}).length > 0;
          if (!shown) lacking.push(`${name} ${where} ${type}`);
        }
      }
    }
    expect(lacking.sort()).toEqual(Object.keys(withoutExample).sort());
  });

  it('describes every error as application/problem+json, through the shared responses', () => {
    for (const { method, path, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400 || path === '/readyz') continue;
        expect(response.$ref, `${method} ${path} ${status}`).toMatch(/^#\/components\/responses\/\w+$/);
      }
    }
    for (const response of Object.values(document.components.responses)) {
      expect(Object.keys(response.content)).toEqual(['application/problem+json']);
    }
  });

  it('declares the headers the hooks read and write, where they apply', () => {
    const refs = (operation: Operation) =>
      (operation.parameters ?? []).map((parameter) =>
        '$ref' in parameter ? parameter.$ref : parameter.name,
      );
    const send = document.paths['/v1/conversations/{conversation_id}/messages']?.post as Operation;
    expect(refs(send)).toEqual(
      expect.arrayContaining([
        '#/components/parameters/XParleyUser',
        '#/components/parameters/IdempotencyKey',
      ]),
    );
    expect(Object.keys(send.responses)).toEqual(expect.arrayContaining(['409', '413', '415', '422', '429']));
    expect(Object.keys(send.responses['201']?.headers ?? {})).toEqual(
      expect.arrayContaining([
        'X-Request-Id',
        'RateLimit-Limit',
        'RateLimit-Remaining',
        'RateLimit-Reset',
        'Idempotent-Replayed',
      ]),
    );
    // An operator route takes no X-Parley-User; a read takes no Idempotency-Key; a public one neither.
    expect(refs(document.paths['/v1/admin/tenants']?.post as Operation)).not.toContain(
      '#/components/parameters/XParleyUser',
    );
    expect(refs(document.paths['/v1/messages/{message_id}']?.get as Operation)).not.toContain(
      '#/components/parameters/IdempotencyKey',
    );
    expect(document.paths['/healthz']?.get?.security).toEqual([]);
    // Bodies a client may leave out are optional, and only those.
    const bodyRequired = (path: string) =>
      (document.paths[path]?.post?.requestBody as { required?: boolean } | undefined)?.required;
    expect(bodyRequired('/v1/conversations/{conversation_id}/read')).toBe(false);
    expect(bodyRequired('/v1/users/{user_id}/tokens')).toBe(false);
    expect(bodyRequired('/v1/conversations/{conversation_id}/messages')).toBe(true);
    expect(document.paths['/healthz']?.get?.parameters).toBeUndefined();
  });
});

describe('the check of every response against the document (test/helpers/response-contract.ts)', () => {
  it('catches a body off its schema, an undocumented status and an undeclared content type', async () => {
    const app = Fastify();
    await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '1' } } });
    const Thing = {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'string' } },
      additionalProperties: false,
    };
    app.get('/thing/:kind', { schema: { response: { 200: Thing } } }, async (request, reply) => {
      const { kind } = request.params as { kind: string };
      // The serializer drops what the schema lacks; a handler that sends text bypasses it, as a bug would.
      if (kind === 'off-schema') return reply.type('application/json').send('{"name":"no id"}');
      if (kind === 'teapot') return reply.code(418 as 200).send({ id: 'x' });
      if (kind === 'text') return reply.type('text/plain').send('plain');
      return { id: 'fine' };
    });
    checkResponsesAgainstDocument(app);
    await app.ready();
    for (const kind of ['fine', 'off-schema', 'teapot', 'text']) await app.inject({ url: `/thing/${kind}` });
    const found = takeContractViolations(app, () => true);
    expect(found.map(({ status, problem }) => [status, problem.split(':')[0]])).toEqual([
      [200, 'the body does not match'],
      [418, 'status 418 is not documented'],
      [200, 'content type text/plain is not declared (application/json)'],
    ]);
    await app.close();
  });
});
