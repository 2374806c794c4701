import { appendFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../../src/http/app-types.ts';

// Every response a test app sends, held against the OpenAPI document the same app publishes
// (docs/TESTING.md, "The contract"): its status must be documented for the operation, its content type
// declared, and a JSON body must match the schema. What does not is collected, and fails the test file once
// its tests have run (test/setup.ts), listing it, so the document cannot drift from what the server does.
// A test that breaks the contract on purpose takes what it expects with `takeContractViolations`.

/** One way a response differed from the document. */
export interface ContractViolation {
  operation: string;
  status: number;
  problem: string;
}

/** What each test app of this file sent that the document does not describe, until taken or reported. */
const violationsOf = new Map<App, ContractViolation[]>();

/** Removes and returns `app`'s violations that `match` accepts: those a test caused on purpose. */
export function takeContractViolations(
  app: App,
  match: (violation: ContractViolation) => boolean,
): ContractViolation[] {
  const all = violationsOf.get(app) ?? [];
  const taken = all.filter(match);
  violationsOf.set(
    app,
    all.filter((violation) => !taken.includes(violation)),
  );
  return taken;
}

// ajv-formats is CommonJS with a default export: under ESM the module itself is the function.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** The document's base for `$ref`s, so one Ajv resolves every schema against the whole document. */
const DOCUMENT_ID = 'https://parley.invalid/openapi.json';

interface MediaType {
  schema?: unknown;
}
interface Response {
  $ref?: string;
  content?: Record<string, MediaType>;
}
interface Operation {
  responses?: Record<string, Response>;
}
interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components: { responses?: Record<string, Response> };
}

/** Content types whose bodies are JSON, whatever their suffix. */
const isJsonType = (type: string) => type === 'application/json' || type.endsWith('+json');

const mediaTypeOf = (header: unknown) =>
  typeof header === 'string' ? (header.split(';')[0] ?? '').trim().toLowerCase() : undefined;

/** Checks each response of `app` against the document it serves. */
export function checkResponsesAgainstDocument(app: App): void {
  violationsOf.set(app, []);
  const record = (violation: ContractViolation) => {
    violationsOf.get(app)?.push(violation);
    // CONTRACT_LOG=<file>: every violation of a run in one file, to see them all at once.
    const log = process.env.CONTRACT_LOG;
    if (log) appendFileSync(log, `${JSON.stringify(violation)}\n`);
  };
  let checker: ((request: FastifyRequest, reply: FastifyReply, payload: unknown) => void) | undefined;
  // Compiled before the app serves (once per document and test file): compiling on a first response would
  // block the event loop for a few hundred ms in the middle of a test, and tests of timeouts would feel it.
  app.addHook('onReady', (done) => {
    checker = createChecker(compiledDocument(app.swagger() as unknown as OpenApi), record);
    done();
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (checker === undefined) return payload;
    try {
      checker(request, reply, payload);
    } catch (error) {
      record({
        operation: `${request.method} ${request.routeOptions.url ?? request.url}`,
        status: reply.statusCode,
        problem: `the check itself failed: ${String(error)}`,
      });
    }
    return payload;
  });
}

/** Throws, listing them, if any app of this test file sent a response the document does not describe. */
export function reportContractViolations(): void {
  const left = [...violationsOf.values()].flat();
  violationsOf.clear();
  if (left.length === 0) return;
  const lines = left.map(
    (violation) => `  ${violation.operation} → ${violation.status}: ${violation.problem}`,
  );
  throw new Error(
    `${left.length} response(s) differ from the OpenAPI document (the route schemas, and ` +
      `src/http/openapi-document.ts):\n${lines.join('\n')}`,
  );
}

/** A document with a validator for every JSON body it describes, compiled up front. */
interface CompiledDocument {
  document: OpenApi;
  /** Its responses, `$ref`s into components resolved. */
  responsesOf: (path: string, method: string) => Record<string, Response | undefined>;
  validatorOf: (media: MediaType) => ValidateFunction | undefined;
}

/** Documents compiled in this test file, by their text: every app of a file serves the same one. */
const compiled = new Map<string, CompiledDocument>();

function compiledDocument(document: OpenApi): CompiledDocument {
  const text = JSON.stringify(document);
  const known = compiled.get(text);
  if (known !== undefined) return known;
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  addFormats(ajv);
  // The whole document as one schema, so `$ref`s into components resolve as they are written.
  const rebased = JSON.parse(text.replaceAll('"$ref":"#/', `"$ref":"${DOCUMENT_ID}#/`)) as OpenApi;
  ajv.addSchema({ $id: DOCUMENT_ID, ...rebased });
  const resolve = (response: Response | undefined): Response | undefined => {
    const ref = response?.$ref;
    if (ref === undefined) return response;
    return rebased.components.responses?.[ref.slice(ref.lastIndexOf('/') + 1)];
  };
  const validators = new Map<MediaType, ValidateFunction>();
  for (const item of Object.values(rebased.paths)) {
    for (const operation of Object.values(item)) {
      for (const response of Object.values(operation.responses ?? {})) {
        for (const [type, media] of Object.entries(resolve(response)?.content ?? {})) {
          if (isJsonType(type) && !validators.has(media))
            validators.set(media, ajv.compile(media.schema ?? {}));
        }
      }
    }
  }
  const result: CompiledDocument = {
    document,
    responsesOf: (path, method) =>
      Object.fromEntries(
        Object.entries(rebased.paths[path]?.[method]?.responses ?? {}).map(([status, response]) => [
          status,
          resolve(response),
        ]),
      ),
    validatorOf: (media) => validators.get(media),
  };
  compiled.set(text, result);
  return result;
}

function createChecker(
  { document, responsesOf, validatorOf }: CompiledDocument,
  record: (violation: ContractViolation) => void,
) {
  return (request: FastifyRequest, reply: FastifyReply, payload: unknown): void => {
    const route = request.routeOptions.url;
    if (route === undefined) return; // no route: the not-found handler, which no operation describes
    const path = route.replace(/:(\w+)/g, '{$1}');
    const method = request.method.toLowerCase();
    const operation = document.paths[path]?.[method];
    // Hidden routes (the documents themselves, /docs) and the HEAD twins of GET routes are not operations.
    if (operation === undefined) return;
    const name = `${request.method} ${path}`;
    const status = reply.statusCode;
    const responses = responsesOf(path, method);
    const response =
      responses[String(status)] ?? responses[`${String(status)[0] ?? ''}XX`] ?? responses.default;
    if (response === undefined) {
      record({ operation: name, status, problem: `status ${status} is not documented` });
      return;
    }
    // Fastify sends no body with a 204 or 304, whatever the handler gave.
    if (status === 204 || status === 304) return;
    const type = mediaTypeOf(reply.getHeader('content-type'));
    const declared = response.content ?? {};
    const hasBody = payload !== null && payload !== undefined && payload !== '';
    if (!hasBody || method === 'head') return;
    if (type === undefined) {
      record({ operation: name, status, problem: 'a body without a content type' });
      return;
    }
    const media = declared[type] ?? declared['*/*'];
    if (media === undefined) {
      const listed = Object.keys(declared).join(', ') || 'no body';
      record({ operation: name, status, problem: `content type ${type} is not declared (${listed})` });
      return;
    }
    if (!isJsonType(type) || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) return;
    const validate = validatorOf(media);
    if (validate === undefined) throw new Error(`no validator for ${name} ${status} ${type}`);
    const body: unknown = JSON.parse(payload.toString());
    if (!validate(body)) {
      const errors = (validate.errors ?? []).map(
        (error) => `${error.instancePath || '/'} ${error.message ?? ''}`,
      );
      const where = validate.errors?.[0]?.instancePath ?? '';
      // JSON.stringify gives undefined for a missing value, whatever its declared type says.
      const value = (JSON.stringify(valueAt(body, where)) as string | undefined)?.slice(0, 300);
      record({
        operation: name,
        status,
        problem: `the body does not match: ${errors.slice(0, 3).join('; ')} (at ${where || '/'}: ${value})`,
      });
    }
  };
}

/** The value at a JSON pointer into `body` (Ajv's `instancePath`). */
function valueAt(body: unknown, pointer: string): unknown {
  let value = body;
  for (const segment of pointer.split('/').slice(1)) {
    const key = segment.replaceAll('~1', '/').replaceAll('~0', '~');
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  }
  return value;
}
