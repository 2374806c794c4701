// The one way Parley sends an HTTP request to a URL a tenant or a user gave it. The address is checked where
// the socket is opened (the addresses the guarded lookup approves are the ones net.connect uses: no second
// resolution, so no DNS-rebinding window), redirects are not followed, one deadline covers connect, headers
// and body, and the response body is read to a bound. docs/OUTBOUND.md.
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector, request as undiciRequest } from 'undici';
import {
  bareHost,
  checkOutboundUrlShape,
  isAddressAllowed,
  judgeHostWithoutDns,
  OutboundUrlError,
  resolveHost,
  systemLookup,
  type OutboundLookup,
  type OutboundPolicy,
} from './outbound-url.ts';

/** What went wrong below HTTP, so a caller can record why a delivery failed and decide to retry. */
export type OutboundErrorKind =
  /** The stored URL no longer passes the URL checks (scheme, credentials, port): do not retry. */
  | 'refused_url'
  /** The host is, or resolved to, an address Parley does not send to. */
  | 'refused_address'
  /** The host name did not resolve. */
  | 'unresolvable'
  /** The deadline passed before the response was read. */
  | 'timeout'
  /** The caller's signal aborted the request (shutdown). */
  | 'aborted'
  /** The TLS handshake failed (certificate, protocol). */
  | 'tls'
  /** The server answered something that is not HTTP/1.1. */
  | 'protocol'
  /** The connection was refused, reset or could not be made. */
  | 'connect';

/** A transport failure of sendOutbound. Never thrown for an HTTP status. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  constructor(
    readonly kind: OutboundErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One request to a tenant's or user's URL. */
export interface OutboundRequest {
  url: string;
  /** Default POST. */
  method?: string;
  headers: Record<string, string>;
  body: string | Uint8Array;
  /** Deadline for the whole exchange: connect, headers and body. Default 15 000. */
  timeoutMs?: number;
  /** Most bytes of the response body kept; the rest is not read and the connection is closed. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Aborts the request early, e.g. at shutdown (kind 'aborted'). */
  signal?: AbortSignal;
}

/** The answer, whatever its status (a 3xx is returned as is, its Location not followed). */
export interface OutboundResponse {
  status: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  /** The body as UTF-8, at most maxBodyBytes of it. */
  body: string;
  /** Whether the body was longer than maxBodyBytes and cut. */
  truncated: boolean;
}

export const DEFAULT_OUTBOUND_TIMEOUT_MS = 15_000;
export const DEFAULT_OUTBOUND_MAX_BODY_BYTES = 64 * 1024;

/**
 * Sends one request under the policy. Resolves with the response for any HTTP status; rejects with
 * OutboundError for a refused URL or address and for every transport failure.
 */
export async function sendOutbound(
  request: OutboundRequest,
  policy: OutboundPolicy,
): Promise<OutboundResponse> {
  const timeoutMs = request.timeoutMs ?? DEFAULT_OUTBOUND_TIMEOUT_MS;
  const maxBodyBytes = request.maxBodyBytes ?? DEFAULT_OUTBOUND_MAX_BODY_BYTES;
  let url: URL;
  try {
    url = checkOutboundUrlShape(request.url);
  } catch (error) {
    throw toOutboundError(error);
  }
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = request.signal === undefined ? deadline : AbortSignal.any([deadline, request.signal]);
  try {
    const response = await undiciRequest(url, {
      dispatcher: agentFor(policy),
      method: request.method ?? 'POST',
      headers: request.headers,
      body: request.body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const { body, truncated } = await readBounded(response.body, maxBodyBytes);
    return { status: response.statusCode, headers: flattenHeaders(response.headers), body, truncated };
  } catch (error) {
    if (deadline.aborted) throw new OutboundError('timeout', `No complete response within ${timeoutMs} ms.`);
    if (request.signal?.aborted === true) throw new OutboundError('aborted', 'The request was aborted.');
    throw toOutboundError(error);
  }
}

/** Closes the connections every policy's agent keeps open (graceful shutdown, the end of a test file). */
export async function closeOutboundAgents(): Promise<void> {
  const all = [...agents.values()].flatMap((byPermission) => [...byPermission.values()]);
  agents.clear();
  await Promise.all(all.map((agent) => agent.close()));
}

/**
 * Reads at most `limit` bytes, then stops: leaving the loop early destroys the body, which makes undici
 * close the connection rather than read the rest.
 */
async function readBounded(
  stream: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<{ body: string; truncated: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream) {
    if (size + chunk.byteLength > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      size = limit;
      truncated = true;
      break;
    }
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  return { body: Buffer.concat(chunks, size).toString('utf8'), truncated };
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/** Agents by lookup and by allowPrivateNetworks: built on first use, reused by every later call. */
const agents = new Map<OutboundLookup, Map<boolean, Agent>>();

function agentFor(policy: OutboundPolicy): Agent {
  const lookup = policy.lookup ?? systemLookup;
  let byPermission = agents.get(lookup);
  if (byPermission === undefined) {
    byPermission = new Map();
    agents.set(lookup, byPermission);
  }
  let agent = byPermission.get(policy.allowPrivateNetworks);
  if (agent === undefined) {
    agent = new Agent({
      connect: guardedConnector({ allowPrivateNetworks: policy.allowPrivateNetworks, lookup }),
      // Per origin: a tenant's endpoint gets a few sockets, never the process's file descriptors.
      connections: 4,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 30_000,
      maxHeaderSize: 16 * 1024,
    });
    byPermission.set(policy.allowPrivateNetworks, agent);
  }
  return agent;
}

/**
 * undici's connector, with the host checked first: an IP literal or `localhost` here (net.connect does not
 * call `lookup` for a literal), any other name in the lookup net.connect calls.
 */
function guardedConnector(policy: OutboundPolicy): buildConnector.connector {
  const connect = buildConnector({ lookup: guardedLookup(policy), timeout: 10_000 });
  return (options, callback) => {
    if (judgeHostWithoutDns(bareHost(options.hostname), policy) === false) callback(refusedAddress(), null);
    else connect(options, callback);
  };
}

/** Resolves as the policy says and hands net.connect the addresses only if every one of them is allowed. */
function guardedLookup(policy: OutboundPolicy): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    resolveHost(hostname, policy).then(
      (resolved) => {
        if (!resolved.every((entry) => isAddressAllowed(entry.address, policy))) {
          callback(refusedAddress(), '', 0);
          return;
        }
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const wanted: LookupAddress[] = resolved
          .filter((entry) => family === undefined || family === 0 || entry.family === family)
          .map((entry) => ({ address: entry.address, family: entry.family }));
        const first = wanted[0];
        if (first === undefined)
          callback(new OutboundError('unresolvable', 'The host has no address of that family.'), '', 0);
        else if (options.all === true) callback(null, wanted);
        else callback(null, first.address, first.family);
      },
      (error: unknown) => callback(toOutboundError(error), '', 0),
    );
  };
}

function refusedAddress(): OutboundError {
  return new OutboundError('refused_address', 'The host is, or resolves to, an address that is not public.');
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const UNRESOLVABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA']);
/**
 * The certificate checks Node reports by OpenSSL's name (X509_V_ERR_* without the prefix), which do not all
 * say CERT, SSL or TLS: `UNABLE_TO_VERIFY_LEAF_SIGNATURE` is what an unknown CA's certificate gets when the
 * server sends no chain, the most common failure of all.
 */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** The kind of a failure, from undici's and Node's error codes. */
function toOutboundError(error: unknown): OutboundError {
  if (error instanceof OutboundError) return error;
  if (error instanceof OutboundUrlError) {
    const kind =
      error.reason === 'address'
        ? 'refused_address'
        : error.reason === 'unresolvable'
          ? 'unresolvable'
          : 'refused_url';
    return new OutboundError(kind, error.message, { cause: error });
  }
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  const message = error instanceof Error ? error.message : String(error);
  if (TIMEOUT_CODES.has(code)) return new OutboundError('timeout', message, { cause: error });
  if (UNRESOLVABLE_CODES.has(code)) return new OutboundError('unresolvable', message, { cause: error });
  if (CERTIFICATE_CODES.has(code) || /CERT|SSL|TLS/.test(code)) {
    return new OutboundError('tls', message, { cause: error });
  }
  if (code.startsWith('HPE_') || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO') {
    return new OutboundError('protocol', message, { cause: error });
  }
  return new OutboundError('connect', message, { cause: error });
}
