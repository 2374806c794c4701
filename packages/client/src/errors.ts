import type { ErrorCode, Problem } from './types.js';

/**
 * A refusal by the server: an HTTP problem (`application/problem+json`, docs/ERRORS.md) or a socket `error`
 * frame. Match on `code`, never on the message.
 */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  /** The stable code (`not_found`, `rate_limited`, …), or `network` when the server could not be reached. */
  readonly code: ErrorCode | 'network';
  /** The HTTP status; absent for a socket `error` frame and for a network failure. */
  readonly status: number | undefined;
  /** The whole problem document, for an HTTP refusal (with `errors[]` for `validation_failed`). */
  readonly problem: Problem | undefined;
  /** The `X-Request-Id` of the response: quote it when reporting a server error. */
  readonly requestId: string | undefined;

  constructor(
    code: ErrorCode | 'network',
    message: string,
    details: { status?: number; problem?: Problem; requestId?: string; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.problem = details.problem;
    this.requestId = details.requestId;
  }

  /** Whether the same request, sent again (with the same `Idempotency-Key` or `client_msg_id`), may succeed. */
  get retryable(): boolean {
    return this.code === 'network' || this.code === 'unavailable' || this.code === 'rate_limited';
  }
}

/** The problem of a response that is not 2xx, as an error; a body that is not a problem is described. */
export async function errorFromResponse(response: Response): Promise<ParleyError> {
  const requestId = response.headers.get('x-request-id') ?? undefined;
  const text = await response.text().catch(() => '');
  let problem: Problem | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (typeof parsed.code === 'string' && typeof parsed.status === 'number') problem = parsed as Problem;
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  if (problem !== undefined) {
    return new ParleyError(problem.code, problem.detail || problem.title, {
      status: response.status,
      problem,
      ...(requestId === undefined ? {} : { requestId }),
    });
  }
  const code: ErrorCode =
    response.status === 503 ? 'unavailable' : response.status === 429 ? 'rate_limited' : 'internal';
  return new ParleyError(code, `HTTP ${response.status} ${response.statusText}`.trim(), {
    status: response.status,
    ...(requestId === undefined ? {} : { requestId }),
  });
}
