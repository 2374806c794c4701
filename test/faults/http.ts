/** What a run saw go wrong on the wire, with times, so each can be placed inside or outside a fault window. */
export class Ledger {
  /** Server errors: HTTP 5xx answers, and socket `error` frames `internal` (as 500) or `unavailable` (as 503). */
  readonly serverErrors: { from: number; to: number; status: number; code: string; where: string }[] = [];
  /** Requests refused with 4xx although they were valid (any 4xx but 429): each is a finding. */
  readonly refusals: { at: number; status: number; code: string; where: string; detail: string }[] = [];
  rateLimited = 0;
  /** Connections refused or cut, and requests that timed out: retried. */
  networkErrors = 0;
  timeouts = 0;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  retryAfterMs: number | null;
}

/** A request that never got an answer: the connection was refused or cut, or it timed out. */
export class NoAnswer extends Error {
  constructor(
    readonly why: 'network' | 'timeout',
    detail: string,
  ) {
    super(`${why}: ${detail}`);
  }
}

/** One HTTP request to a server of the run; records server errors, refusals and lost connections. */
export async function request(
  ledger: Ledger,
  base: string,
  method: string,
  path: string,
  token: string,
  body?: object,
  options: { actAs?: string; timeoutMs?: number; where?: string } = {},
): Promise<Answer> {
  const from = Date.now();
  const where = options.where ?? `${method} ${path.replace(/\?.*/, '')}`;
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(options.actAs ? { 'x-parley-user': options.actAs } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    text = await response.text();
  } catch (error) {
    const isTimeout =
      error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    if (isTimeout) ledger.timeouts++;
    else ledger.networkErrors++;
    throw new NoAnswer(
      isTimeout ? 'timeout' : 'network',
      error instanceof Error ? error.message : String(error),
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    parsed = { text };
  }
  const code = typeof parsed.code === 'string' ? parsed.code : '';
  const retryAfter = Number(response.headers.get('retry-after'));
  const answer: Answer = {
    status: response.status,
    body: parsed,
    retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null,
  };
  if (response.status >= 500) {
    ledger.serverErrors.push({ from, to: Date.now(), status: response.status, code, where });
  } else if (response.status === 429) {
    ledger.rateLimited++;
  } else if (response.status >= 400) {
    ledger.refusals.push({
      at: from,
      status: response.status,
      code,
      where,
      detail: typeof parsed.detail === 'string' ? parsed.detail : text.slice(0, 200),
    });
  }
  return answer;
}

/** Like `request`, but throws unless the answer is 2xx: for the run's setup, where nothing is faulted. */
export async function expectOk(
  ledger: Ledger,
  base: string,
  method: string,
  path: string,
  token: string,
  body?: object,
  actAs?: string,
): Promise<Record<string, unknown>> {
  const answer = await request(ledger, base, method, path, token, body, actAs ? { actAs } : {});
  if (answer.status >= 300) {
    throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}
