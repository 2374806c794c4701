import createClient, { type Client, type MaybeOptionalInit, type Middleware } from 'openapi-fetch';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { ParleyError, errorFromResponse } from './errors.js';
import type { paths } from './generated/openapi.js';

/** A credential, or a function that returns a fresh one (called before every request that needs it). */
export type TokenSource = string | (() => string | Promise<string>);

export interface RestOptions {
  /** The server, e.g. `https://chat.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /**
   * A user token (in a client), or an api key (in a tenant's backend). A function is called for each request,
   * so it can return a token it renews; after a `401` it is called once more and the request retried.
   */
  token: TokenSource;
  /** With an api key: the user to act as (`X-Parley-User`), for every request that does not set its own. */
  actAs?: string;
  /** Resend a request that failed for a reason that may pass (see `retryable` in ParleyError). Default on. */
  retry?: false | { attempts?: number; backoff?: BackoffOptions };
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch';
/** The paths that have a route for `M`. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: paths[P] extends Record<M, infer Op> ? ([Op] extends [undefined] ? never : P) : never;
}[keyof paths];
type RequiredKeysOf<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
/** The second argument of a call: optional when nothing in it is required. */
type InitArgs<Init> = RequiredKeysOf<Init> extends never ? [init?: Init] : [init: Init];
type SuccessStatus = 200 | 201 | 202 | 204;
/**
 * What a successful call resolves to: the body of the route's 2xx answers, typed (`undefined` for a `204`).
 * Read straight off the generated `paths`, so it is exactly the document's.
 */
export type ResponseData<P extends keyof paths, M extends HttpMethod> = paths[P][M] extends {
  responses: infer R;
}
  ? {
      [S in keyof R & SuccessStatus]: R[S] extends { content: infer C } ? C[keyof C] : undefined;
    }[keyof R & SuccessStatus]
  : never;
/** A typed method: `(path, { params, body })` → the response body; a refusal throws `ParleyError`. */
export type CallMethod<M extends HttpMethod> = <
  P extends PathsWith<M>,
  Init extends MaybeOptionalInit<paths[P], M>,
>(
  path: P,
  ...init: InitArgs<Init>
) => Promise<ResponseData<P, M>>;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SEND_PATHS = new Set(['/v1/conversations/{conversation_id}/messages', '/v1/direct-messages']);
/** Statuses worth a second try; a request is only retried when repeating it is safe (below). */
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 60_000;

/** A random id for `Idempotency-Key` and `client_msg_id`. */
export const randomId = (): string => globalThis.crypto.randomUUID();

const resolveToken = async (token: TokenSource): Promise<string> =>
  typeof token === 'function' ? token() : token;

/**
 * The REST half of the SDK: every route of the OpenAPI document, typed from it (src/generated/openapi.ts),
 * through openapi-fetch, with what every call needs done for the caller:
 * - the credential on every request (and one renewal and retry after a `401`, when it comes from a function);
 * - an `Idempotency-Key` on every `POST`, `PUT`, `PATCH` and `DELETE` that has none, so the retries below can
 *   never do a thing twice, and a `client_msg_id` on every message sent that has none;
 * - retries, with backoff and jitter, of what failed for a reason that may pass: the network, `429` (after
 *   its `Retry-After`), `502`, `503`, `504`; only for reads and requests with an `Idempotency-Key`;
 * - a refusal thrown as a `ParleyError` carrying the problem document.
 *
 * `api` is the openapi-fetch client itself (`{ data, response }` answers, middleware); `get`, `post`, `put`,
 * `patch` and `delete` resolve to the response body.
 */
export class RestClient {
  readonly api: Client<paths, 'application/json'>;
  readonly get: CallMethod<'get'>;
  readonly post: CallMethod<'post'>;
  readonly put: CallMethod<'put'>;
  readonly patch: CallMethod<'patch'>;
  readonly delete: CallMethod<'delete'>;
  readonly #options: RestOptions;

  constructor(options: RestOptions) {
    this.#options = options;
    const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = createClient<paths, 'application/json'>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      fetch: (request: Request) => this.#send(baseFetch, request),
    });
    this.api.use(this.#prepare);
    const call =
      (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE') =>
      async (path: string, init?: unknown): Promise<never> => {
        const request = this.api[method] as (path: string, init?: unknown) => Promise<{ data?: unknown }>;
        return (await request(path, init)).data as never;
      };
    this.get = call('GET');
    this.post = call('POST');
    this.put = call('PUT');
    this.patch = call('PATCH');
    this.delete = call('DELETE');
  }

  /** The credential a request is sent with now (the token source's current answer). */
  token(): Promise<string> {
    return resolveToken(this.#options.token);
  }

  readonly #prepare: Middleware = {
    onRequest: async ({ request, schemaPath }) => {
      const headers = new Headers(request.headers);
      headers.set('authorization', `Bearer ${await this.token()}`);
      if (this.#options.actAs !== undefined && !headers.has('x-parley-user')) {
        headers.set('x-parley-user', this.#options.actAs);
      }
      if (MUTATING.has(request.method) && !headers.has('idempotency-key'))
        headers.set('idempotency-key', randomId());
      let body: ArrayBuffer | string | null = request.body === null ? null : await request.arrayBuffer();
      if (request.method === 'POST' && SEND_PATHS.has(schemaPath) && body !== null) {
        const message = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
        if (message.client_msg_id === undefined)
          body = JSON.stringify({ ...message, client_msg_id: randomId() });
      }
      return new Request(request.url, { method: request.method, headers, body, signal: request.signal });
    },
    onResponse: async ({ response }) => {
      if (!response.ok) throw await errorFromResponse(response);
      return undefined;
    },
  };

  /** Sends `request`, retrying what may be retried; the body was read into memory, so it can be sent again. */
  async #send(baseFetch: typeof globalThis.fetch, request: Request): Promise<Response> {
    const retry = this.#options.retry ?? {};
    const attempts = retry === false ? 1 : Math.max(1, retry.attempts ?? 4);
    const repeatable = !MUTATING.has(request.method) || request.headers.has('idempotency-key');
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= attempts || !repeatable;
      let response: Response;
      try {
        response = await baseFetch(request.clone());
      } catch (error) {
        if (request.signal.aborted) throw error;
        if (last) throw new ParleyError('network', `could not reach ${request.url}`, { cause: error });
        await sleep(backoffDelay(attempt, retry === false ? {} : retry.backoff), request.signal);
        continue;
      }
      if (response.status === 401 && !renewed && typeof this.#options.token === 'function') {
        // The token may have expired between the check and the request: ask for a fresh one, once.
        renewed = true;
        await response.body?.cancel(); // Frees the connection now, not when the response is collected.
        const headers = new Headers(request.headers);
        headers.set('authorization', `Bearer ${await this.token()}`);
        request = new Request(request, { headers });
        attempt--;
        continue;
      }
      if (last || !RETRY_STATUSES.has(response.status)) return response;
      const retryAfter = Number(response.headers.get('retry-after'));
      const delay =
        Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, MAX_RETRY_AFTER_MS) : 0;
      await response.body?.cancel();
      await sleep(
        Math.max(delay, backoffDelay(attempt, retry === false ? {} : retry.backoff)),
        request.signal,
      );
    }
  }
}
