import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyRequest } from 'fastify';
import type { App } from './app-types.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/cors' options for one route, laid over the app's (see `ANY_ORIGIN`). */
    cors?: FastifyCorsOptions;
  }
}

/** The request headers browser code may send: the API's, and those of tus and of file links. */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Idempotency-Key',
  'X-Parley-User',
  'X-Request-Id',
  // tus (resumable-uploads.ts; deferred lengths and concatenation are refused there, with a problem)
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  'Upload-Defer-Length',
  'Upload-Concat',
  // what file links honour (serve-object.ts), beyond the simple ranges browsers send without asking
  'Range',
  'If-Range',
  'If-None-Match',
  'If-Modified-Since',
];

/** The response headers browser code may read, beyond those the Fetch standard always lets it. */
const EXPOSED_HEADERS = [
  'X-Request-Id',
  'Idempotent-Replayed',
  'Retry-After',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Location',
  'ETag',
  'Content-Range',
  'Content-Disposition',
  // tus, and the attachment a finished upload became
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Expires',
  'Parley-Attachment-Id',
];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * A route's CORS options when any origin may read its answers, whatever `PARLEY_ALLOWED_ORIGINS` says: file
 * links, whose URL is the credential (they send `Cross-Origin-Resource-Policy: cross-origin` for the same
 * reason). Preflights are answered by the plugin's `OPTIONS *` route, with the app's options.
 */
export const ANY_ORIGIN: FastifyCorsOptions = { origin: '*' };

/**
 * Whether a request with `Origin` is a CORS preflight (the Fetch standard's: OPTIONS with
 * `Access-Control-Request-Method`). Any other OPTIONS is left to its route: tus discovery
 * (`OPTIONS /v1/uploads`), or 404.
 */
const isPreflight = (request: FastifyRequest) =>
  request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;

/**
 * CORS for every HTTP route (docs/CONFIG.md, `PARLEY_ALLOWED_ORIGINS`), with @fastify/cors: any origin
 * (`Access-Control-Allow-Origin: *`) when `allowedOrigins` is empty, else only those origins, echoed. Never
 * credentials mode: callers authenticate with headers, not cookies. A request without `Origin` (a server,
 * a mobile app) gets no CORS headers. Preflights are answered (204) in `onRequest`, before authentication
 * and rate limits, which they carry nothing for: register before those hooks.
 */
export async function registerCors(app: App, allowedOrigins: string[]): Promise<void> {
  const allowed: FastifyCorsOptions = {
    origin: allowedOrigins.length === 0 ? '*' : allowedOrigins,
    credentials: false,
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
  };
  const noCors: FastifyCorsOptions = { origin: false };
  const preflight: FastifyCorsOptions = { ...allowed, preflight: true };
  const actual: FastifyCorsOptions = { ...allowed, preflight: false };
  // Options chosen per request: with one set, the plugin would take every OPTIONS for a preflight (and answer
  // 400 to one without the preflight's headers), and tus discovery would never reach its route. Chosen per
  // request, they make the plugin send `Vary: Origin` on every answer, which caches need here anyway.
  await app.register(cors, {
    delegator: (request, callback) => {
      if (request.headers.origin === undefined) callback(null, noCors);
      else callback(null, isPreflight(request) ? preflight : actual);
    },
  });
}
