import { STATUS_CODES } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { ERROR_CODES } from '../errors.ts';
import { OPTIONAL_BODY } from './optional-body.ts';

// The last pass over the OpenAPI document @fastify/swagger builds from the route schemas (docs/API.md,
// "The OpenAPI document"): what is true of every route alike is said here once, from the same sources the
// server acts on (the error codes, the hooks' rules), rather than on each of the routes:
// - every error is `application/problem+json`, through one shared response per status;
// - schemas the code names (a TypeBox `title`: Message, ConversationPage…) become `components.schemas`
//   and are referenced, so a client generator gives them names;
// - the headers the hooks read and write: `X-Parley-User` (api keys), `Idempotency-Key` and
//   `Idempotent-Replayed` (mutating routes), `RateLimit-*` and `Retry-After` (counted routes),
//   `X-Request-Id` (every answer);
// - the statuses the hooks can answer on any route they run on: 409 and 422 (idempotency), 413 and 415
//   (a body, on every method Fastify reads one for), 429 (rate limits);
// - tags, servers, license and contact.
// Examples are not made here: each body or answer schema carries its own (TypeBox `examples`, an annotation
// validation ignores), which @fastify/swagger moves to the media type, so every route using it shows it.

/** Plain JSON, as the document is: only objects, arrays and scalars. */
type Json = Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const MUTATING = new Set(['put', 'post', 'patch', 'delete']);
const BODY_METHODS = new Set(['put', 'post', 'patch', 'delete', 'options']);
const PROBLEM_REF = '#/components/schemas/Problem';

/** Every tag a route may carry, in the order the reference shows them. */
export const OPENAPI_TAGS: { name: string; description: string }[] = [
  { name: 'conversations', description: 'Direct messages, groups and channels; members and their roles' },
  { name: 'messages', description: 'Send, read history, threads, edits and deletion' },
  { name: 'reactions', description: 'Emoji reactions on messages' },
  { name: 'pins', description: 'Messages pinned to a conversation' },
  { name: 'read state', description: 'Read watermarks, unread counts and receipts' },
  { name: 'search', description: "Full-text search over the caller's conversations" },
  { name: 'real time', description: 'Catching up on events (the socket itself is in the AsyncAPI document)' },
  { name: 'attachments', description: 'Uploads (multipart, tus, presigned), files and signed links' },
  { name: 'users', description: "A tenant's users, their tokens, export and erasure" },
  { name: 'push', description: 'Web Push subscriptions' },
  { name: 'webhooks', description: "Endpoints of a tenant's backend and their deliveries" },
  { name: 'e2ee', description: 'End-to-end encryption (MLS): devices and their KeyPackages' },
  { name: 'admin', description: 'The operator: tenants, api keys, usage' },
  { name: 'system', description: 'Health, readiness and metrics' },
];

/** The header components, by the name the document gives them. */
const HEADERS: Json = {
  'X-Request-Id': {
    description:
      "The request's id (the caller's `X-Request-Id` when it sent a valid one): quote it in reports",
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 },
  },
  'Access-Control-Allow-Origin': {
    description:
      "CORS (PARLEY_ALLOWED_ORIGINS): `*`, or the request's `Origin` when it is allowed; absent without one",
    schema: { type: 'string', maxLength: 2048, pattern: '^(\\*|https?://[^/]+)$' },
  },
  'RateLimit-Limit': {
    description:
      'Requests of this budget allowed per window for this caller: on every answer of a route that counts ' +
      'its caller (the tenant routes), whether the route accepted the request or refused it',
    schema: { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  'RateLimit-Remaining': {
    description: 'Requests of this budget left in the current window',
    schema: { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  'RateLimit-Reset': {
    description: 'Seconds until the window resets',
    schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86_400 },
  },
  'Retry-After': {
    description: 'Seconds to wait before trying again',
    schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86_400 },
  },
  'Idempotent-Replayed': {
    description:
      '`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`',
    schema: { type: 'string', enum: ['true'] },
  },
};
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });
const RATE_LIMIT_HEADERS = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];

const PARAMETERS: Json = {
  XParleyUser: {
    name: 'X-Parley-User',
    in: 'header',
    required: false,
    description:
      'With an api key: the id of the user to act as (created on first sight). Ignored with a user token.',
    schema: { type: 'string', minLength: 1, maxLength: 255 },
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'Makes a retry safe: the first request with a key runs, a repeat with the same body within 24 h gets ' +
      'the same answer (`Idempotent-Replayed: true`), the key with another body is 422, a repeat while the ' +
      'first runs is 409.',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$', maxLength: 255 },
  },
};
const parameterRef = (name: string) => ({ $ref: `#/components/parameters/${name}` });

/** The shared response of an error status: its name, and the codes that answer with it. */
function errorResponseOf(status: number): { name: string; response: Json } {
  const codes = Object.entries(ERROR_CODES)
    .filter(([, value]) => value.status === status)
    .map(([code]) => code);
  const first = codes[0] as keyof typeof ERROR_CODES | undefined;
  const text = STATUS_CODES[status] ?? (first ? ERROR_CODES[first].title : `Status ${status}`);
  const name = text.replace(/[^A-Za-z0-9]+(.)?/g, (_match, next: string | undefined) =>
    (next ?? '').toUpperCase(),
  );
  const headers: Json = {
    'X-Request-Id': headerRef('X-Request-Id'),
    'Access-Control-Allow-Origin': headerRef('Access-Control-Allow-Origin'),
  };
  // A refusal by the route itself still counted against the caller's budget (the limit is checked first).
  if (status < 500) for (const name of RATE_LIMIT_HEADERS) headers[name] = headerRef(name);
  if (status === 429 || status === 503) headers['Retry-After'] = headerRef('Retry-After');
  return {
    name,
    response: {
      description: `${text}: a problem document with \`code\` ${codes.map((code) => `\`${code}\``).join(' or ')} (docs/ERRORS.md)`,
      headers,
      content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF } } },
    },
  };
}

/** Keywords whose values are schemas, or maps or lists of schemas: where named schemas are looked for. */
const SCHEMA_VALUED = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains'];
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs'];
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const withoutExamples = (schema: Json): Json =>
  Object.fromEntries(Object.entries(schema).filter(([key]) => key !== 'examples' && key !== 'example'));

/**
 * Moves every schema with a `title` (at any depth of `schema`) into `components.schemas` under that title,
 * leaving a `$ref`; the same title on two different schemas is a bug, and throws.
 */
function hoistNamed(schema: unknown, components: Json): unknown {
  if (!isObject(schema)) return schema;
  const out: Json = { ...schema };
  // As @fastify/swagger writes the routes' schemas, so that the webhooks' (plain TypeBox) read the same.
  if ('const' in out && !('enum' in out)) {
    out.enum = [out.const];
    delete out.const;
  }
  const patterns = out.patternProperties;
  if (isObject(patterns) && Object.keys(patterns).join() === '^.*$' && !('additionalProperties' in out)) {
    out.additionalProperties = patterns['^.*$'];
    delete out.patternProperties;
  }
  for (const key of SCHEMA_VALUED) if (key in out) out[key] = hoistNamed(out[key], components);
  for (const key of SCHEMA_MAPS) {
    const map = out[key];
    if (isObject(map)) {
      out[key] = Object.fromEntries(
        Object.entries(map).map(([name, value]) => [name, hoistNamed(value, components)]),
      );
    }
  }
  for (const key of SCHEMA_LISTS) {
    const list = out[key];
    if (Array.isArray(list)) out[key] = list.map((value) => hoistNamed(value, components));
  }
  const title = out.title;
  if (typeof title !== 'string') return out;
  const existing = components[title];
  if (isObject(existing)) {
    // @fastify/swagger moves a response schema's own `examples` to the media type: the same schema may come
    // with and without them. Any other difference is two schemas under one name.
    if (!isDeepStrictEqual(withoutExamples(existing), withoutExamples(out))) {
      throw new Error(`OpenAPI: two different schemas are named ${title}`);
    }
    if ('examples' in existing) return { $ref: `#/components/schemas/${title}` };
  }
  components[title] = out;
  return { $ref: `#/components/schemas/${title}` };
}

/** The content schemas of a request body or response, named ones hoisted. */
function hoistContent(holder: unknown, components: Json): void {
  if (!isObject(holder) || !isObject(holder.content)) return;
  for (const media of Object.values(holder.content)) {
    if (isObject(media) && 'schema' in media) media.schema = hoistNamed(media.schema, components);
  }
}

const isProblemResponse = (response: unknown): boolean => {
  if (!isObject(response) || !isObject(response.content)) return false;
  return Object.values(response.content).some(
    (media) => isObject(media) && isObject(media.schema) && media.schema.$ref === PROBLEM_REF,
  );
};

/** The finishing pass: `document` is @fastify/swagger's, changed in place and returned. */
export function finishOpenApiDocument<T extends object>(
  document: T,
  options: { version: string; license: string },
): T {
  const doc = document as unknown as Json;
  const components = isObject(doc.components) ? doc.components : (doc.components = {});
  const schemas = isObject(components.schemas) ? components.schemas : (components.schemas = {});
  const responses: Json = {};
  components.headers = HEADERS;
  components.parameters = PARAMETERS;

  const usedTags = new Set<string>();
  for (const pathItem of Object.values(isObject(doc.paths) ? doc.paths : {})) {
    if (!isObject(pathItem)) continue;
    for (const method of METHODS) {
      const operation = pathItem[method];
      if (!isObject(operation)) continue;
      // @fastify/swagger suffixes a HEAD route's operationId with `-head`, taking it for a GET's shadow;
      // a HEAD route of its own (tus' HEAD) keeps its name.
      const id = operation.operationId;
      if (method === 'head' && typeof id === 'string' && !isObject(pathItem.get)) {
        operation.operationId = id.replace(/-head$/, '');
      }
      finishOperation(method, operation);
    }
  }
  for (const pathItem of Object.values(isObject(doc.webhooks) ? doc.webhooks : {})) {
    if (!isObject(pathItem)) continue;
    for (const method of METHODS) {
      const operation = pathItem[method];
      if (!isObject(operation)) continue;
      // Parley calls the receiver; the receiver checks the `webhook-signature` header (docs/WEBHOOKS.md).
      operation.security ??= [];
      hoistContent(operation.requestBody, schemas);
      for (const response of Object.values(isObject(operation.responses) ? operation.responses : {})) {
        hoistContent(response, schemas);
      }
    }
  }
  const unknownTags = [...usedTags].filter((tag) => !OPENAPI_TAGS.some((known) => known.name === tag));
  if (unknownTags.length > 0) throw new Error(`OpenAPI: tags not in OPENAPI_TAGS: ${unknownTags.join(', ')}`);
  components.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
  doc.tags = OPENAPI_TAGS;
  doc.servers = [
    {
      url: '{origin}',
      description:
        'Your Parley server, local, staging or production alike: `origin` is its scheme, host and port',
      'x-internal': false,
      variables: { origin: { default: 'http://localhost:3000' } },
    },
  ];
  const info = isObject(doc.info) ? doc.info : (doc.info = {});
  info.version = options.version;
  info.license = { name: options.license, identifier: options.license };
  info.contact = { name: 'Parley maintainers' };
  return document;

  function finishOperation(method: string, operation: Json): void {
    for (const tag of Array.isArray(operation.tags) ? operation.tags : []) usedTags.add(String(tag));
    const security = Array.isArray(operation.security) ? operation.security : doc.security;
    const schemes = Array.isArray(security)
      ? security.flatMap((entry) => (isObject(entry) ? Object.keys(entry) : []))
      : [];
    const parameters = Array.isArray(operation.parameters) ? (operation.parameters as unknown[]) : [];
    const declares = (name: string) =>
      parameters.some((parameter) => isObject(parameter) && String(parameter.name).toLowerCase() === name);
    if (schemes.includes('apiKey') && !declares('x-parley-user'))
      parameters.push(parameterRef('XParleyUser'));
    const isIdempotent = MUTATING.has(method) && schemes.length > 0;
    if (isIdempotent && !declares('idempotency-key')) parameters.push(parameterRef('IdempotencyKey'));
    if (parameters.length > 0) operation.parameters = parameters;

    if (operation[OPTIONAL_BODY] === true && isObject(operation.requestBody))
      operation.requestBody.required = false;
    Reflect.deleteProperty(operation, OPTIONAL_BODY);
    hoistContent(operation.requestBody, schemas);
    const answers = isObject(operation.responses) ? operation.responses : (operation.responses = {});
    // Statuses the hooks answer on any such route: added when a route did not say them itself.
    const extra: number[] = [];
    if (isIdempotent) extra.push(409, 422);
    // Fastify reads a body on these methods whether or not the route takes one: too large is 413, a
    // content type it has no parser for 415.
    if (BODY_METHODS.has(method)) extra.push(413, 415);
    for (const status of extra)
      answers[status] ??= { content: { 'application/json': { schema: { $ref: PROBLEM_REF } } } };
    const isCounted = 429 in answers;

    for (const [statusText, response] of Object.entries(answers)) {
      const status = Number(statusText);
      if (status >= 400 && isProblemResponse(response)) {
        const shared = errorResponseOf(status);
        responses[shared.name] = shared.response;
        answers[statusText] = { $ref: `#/components/responses/${shared.name}` };
        continue;
      }
      if (!isObject(response)) continue;
      hoistContent(response, schemas);
      const headers = isObject(response.headers) ? response.headers : {};
      headers['X-Request-Id'] = headerRef('X-Request-Id');
      headers['Access-Control-Allow-Origin'] = headerRef('Access-Control-Allow-Origin');
      if (status < 300 && isCounted) {
        for (const name of RATE_LIMIT_HEADERS) headers[name] = headerRef(name);
      }
      if (status < 300 && isIdempotent) headers['Idempotent-Replayed'] = headerRef('Idempotent-Replayed');
      response.headers = headers;
      if (response.description === undefined || response.description === 'Default Response') {
        const content = isObject(response.content) ? Object.values(response.content)[0] : undefined;
        const ref = isObject(content) && isObject(content.schema) ? content.schema.$ref : undefined;
        const named = typeof ref === 'string' ? ` (${ref.slice(ref.lastIndexOf('/') + 1)})` : '';
        response.description = `${STATUS_CODES[status] ?? 'Success'}${named}`;
      }
    }
  }
}
