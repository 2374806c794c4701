import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { clip } from './clip.ts';

/** Every machine-readable error code of the public API, with its HTTP status and title (docs/ERRORS.md). */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'Validation failed' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  range_not_satisfiable: { status: 416, title: 'Range not satisfiable' },
  cursor_expired: { status: 410, title: 'Cursor expired' },
  gone: { status: 410, title: 'Gone' },
  idempotency_key_reused: { status: 422, title: 'Idempotency key reused' },
  locked: { status: 423, title: 'Locked' },
  rate_limited: { status: 429, title: 'Rate limited' },
  checksum_mismatch: { status: 460, title: 'Checksum mismatch' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
  quota_exceeded: { status: 507, title: 'Quota exceeded' },
} as const;

/** What `Retry-After` says on an `unavailable` answer: a database restart takes about this long. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One invalid field: a JSON pointer into the request (`/body/name`) and what is wrong with it. */
export interface FieldError {
  path: string;
  message: string;
}

/** An expected failure with a stable code; anything else thrown becomes `internal`. */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
  }
}

/** Socket-level failures: the peer refused, reset or never answered the connection. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/**
 * PostgreSQL SQLSTATEs of a server that is going away or not there yet: 57P01 admin shutdown, 57P02 crash
 * shutdown, 57P03 cannot connect now (starting up, shutting down, recovering), 53300 too many connections.
 * Class 08 (connection exception) is matched by its prefix.
 */
const UNREACHABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres says when a connection ends under a query or the pool cannot hand one out in time. */
const UNREACHABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable)/;

/**
 * Whether an error means a service Parley needs (the database) cannot be reached right now, as opposed to
 * a bug: looks through the wrappers (Drizzle's `cause`, an `AggregateError` of several addresses tried).
 */
export function isUnreachableError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const { code, message, cause, errors } = error as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string') {
    if (NETWORK_ERROR_CODES.has(code) || UNREACHABLE_SQLSTATES.has(code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  if (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message)) return true;
  if (Array.isArray(errors) && errors.some((each) => isUnreachableError(each, depth + 1))) return true;
  return isUnreachableError(cause, depth + 1);
}

/** The AppError a failure is answered with: itself, `unavailable` for an unreachable service, or none (a bug). */
export function appErrorOf(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (isUnreachableError(error)) {
    return new AppError('unavailable', 'the database is unreachable for the moment; retry later');
  }
  return undefined;
}

/** A not-found that does not say whether the thing exists elsewhere (other tenant, private conversation). */
export function notFound(what: string): AppError {
  return new AppError('not_found', `${what} not found`);
}

/**
 * The bounds of a problem's texts and field list: a detail or a field error may quote what the client sent
 * (a property's name, a value), so an answer to a large bad request stays small.
 */
const MAX_DETAIL_LENGTH = 2000;
const MAX_FIELD_ERRORS = 100;
const MAX_FIELD_PATH_LENGTH = 1024;
const MAX_FIELD_MESSAGE_LENGTH = 500;

/** The RFC 9457 body, documented once and referenced by every route's error responses. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({
      pattern: '^urn:parley:error:[a-z_]+$',
      maxLength: 64,
      description: 'URI naming the problem type',
      examples: ['urn:parley:error:not_found'],
    }),
    title: Type.String({ maxLength: 64 }),
    status: Type.Integer({ format: 'int32', minimum: 400, maximum: 599 }),
    detail: Type.String({ maxLength: MAX_DETAIL_LENGTH }),
    code: Type.Union(
      (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => Type.Literal(code)),
      { description: 'Stable machine-readable code; see docs/ERRORS.md' },
    ),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({
            maxLength: MAX_FIELD_PATH_LENGTH,
            description: 'A JSON pointer into the request',
          }),
          message: Type.String({ maxLength: MAX_FIELD_MESSAGE_LENGTH }),
        }),
        {
          maxItems: MAX_FIELD_ERRORS,
          description: `Per-field problems, for validation_failed: the first ${MAX_FIELD_ERRORS}`,
        },
      ),
    ),
  },
  { $id: 'Problem', title: 'Problem' },
);

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
}

/** The problem document of an error code. */
export function problemOf(code: ErrorCode, detail: string, errors?: FieldError[]): ProblemBody {
  const { status, title } = ERROR_CODES[code];
  const fields = errors?.slice(0, MAX_FIELD_ERRORS).map((error) => ({
    path: clip(error.path, MAX_FIELD_PATH_LENGTH),
    message: clip(error.message, MAX_FIELD_MESSAGE_LENGTH),
  }));
  return {
    type: `urn:parley:error:${code}`,
    title,
    status,
    detail: clip(detail, MAX_DETAIL_LENGTH),
    code,
    ...(fields ? { errors: fields } : {}),
  };
}

/** Sends a problem+json response. */
export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string, errors?: FieldError[]) {
  const body = problemOf(code, detail, errors);
  return reply.code(body.status).type('application/problem+json').send(body);
}

interface AjvIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

function toFieldError(context: string, issue: AjvIssue): FieldError {
  const pointer = `/${context}${issue.instancePath}`;
  if (issue.keyword === 'required' && typeof issue.params.missingProperty === 'string') {
    return { path: `${pointer}/${issue.params.missingProperty}`, message: issue.message ?? 'is required' };
  }
  if (issue.keyword === 'additionalProperties' && typeof issue.params.additionalProperty === 'string') {
    return { path: `${pointer}/${issue.params.additionalProperty}`, message: 'is not an allowed property' };
  }
  return { path: pointer, message: issue.message ?? 'is invalid' };
}

/** Issues that only restate another at the same path: the null branch of a nullable, the anyOf itself. */
const isRestatement = (issue: AjvIssue) =>
  issue.keyword === 'anyOf' ||
  issue.keyword === 'oneOf' ||
  (issue.keyword === 'type' && issue.params.type === 'null');

/**
 * Ajv's issues as field errors under `/<context>`, one per field, the most telling: a nullable string that
 * fails its pattern says just that.
 */
export function fieldErrorsFromAjv(context: string, issues: readonly AjvIssue[]): FieldError[] {
  const byPath = new Map<string, { fieldError: FieldError; isRestatement: boolean }>();
  for (const issue of issues) {
    const fieldError = toFieldError(context, issue);
    const existing = byPath.get(fieldError.path);
    if (existing === undefined || (existing.isRestatement && !isRestatement(issue))) {
      byPath.set(fieldError.path, { fieldError, isRestatement: isRestatement(issue) });
    }
  }
  return [...byPath.values()].map((entry) => entry.fieldError);
}

const fieldErrorsOf = (error: FastifyError): FieldError[] =>
  fieldErrorsFromAjv(error.validationContext ?? 'body', (error.validation as AjvIssue[] | undefined) ?? []);

/** Fastify's own errors that are the client's fault, by code, mapped to ours. */
const FASTIFY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_MALFORMED_JSON: 'validation_failed',
  // @fastify/multipart (uploads): too many parts, files or fields, a bad part, an unusable content type.
  FST_PARTS_LIMIT: 'validation_failed',
  FST_FILES_LIMIT: 'validation_failed',
  FST_FIELDS_LIMIT: 'validation_failed',
  FST_PROTO_VIOLATION: 'validation_failed',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'unsupported_media_type',
  FST_REQ_FILE_TOO_LARGE: 'payload_too_large',
};

/** The one error handler: every failure leaves as problem+json; unexpected ones are logged, never echoed. */
export function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) {
    return sendProblem(reply, error.code, error.message, error.errors);
  }
  if (error.validation) {
    const errors = fieldErrorsOf(error);
    const first = errors[0];
    const detail = first ? `${first.path} ${first.message}` : 'the request is invalid';
    return sendProblem(reply, 'validation_failed', detail, errors);
  }
  const mapped =
    FASTIFY_ERRORS[error.code] ?? (error instanceof SyntaxError ? 'validation_failed' : undefined);
  if (mapped) {
    return sendProblem(reply, mapped, error.message);
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    // Any other client error Fastify raises (bad headers, aborted bodies): say so without internals.
    request.log.info({ err: error }, 'client error');
    return sendProblem(reply, error.statusCode === 404 ? 'not_found' : 'validation_failed', error.message);
  }
  if (isUnreachableError(error)) {
    // Not a bug: the database is restarting or cut off. The client retries; the log says what happened.
    request.log.warn({ err: error }, 'database unreachable: answered 503');
    reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    return sendProblem(reply, 'unavailable', 'the database is unreachable for the moment; retry later');
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, 'internal', `internal error; quote request id ${request.id} when reporting it`);
}
