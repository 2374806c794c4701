import { createECDH, createPublicKey, randomBytes, verify } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decrypt } from 'http_ece';

/** One request a push service on loopback got. */
export interface ReceivedPush {
  /** The path: which subscription it was for. */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A browser's subscription to the receiver: its keys, and the means to read what is pushed to it. */
export interface TestSubscriber {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  /** The pushes the receiver got for this subscription. */
  received(): ReceivedPush[];
  /** Decrypts a push to this subscriber (RFC 8291, aes128gcm) and parses its JSON. */
  open(push: ReceivedPush): Record<string, unknown>;
}

/**
 * A push service on loopback (HTTP, or HTTPS when given a certificate): records every request, answers as
 * told (201 by default).
 */
export interface PushReceiver {
  /** `http://127.0.0.1:<port>`, or `https://` when it serves TLS. */
  url: string;
  received: ReceivedPush[];
  /** HTTPS only: the TLS handshakes that failed (a client that did not trust the certificate). */
  tlsFailures: Error[];
  /** The status for each request; 201 unless changed. */
  answer: (push: ReceivedPush) => number;
  /** A new subscriber: an ECDH P-256 key pair and 16 random auth bytes, as a browser makes them. */
  subscriber(): TestSubscriber;
  /** Resolves once `predicate` holds (polled), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1; with `tls` (a certificate for 127.0.0.1 and its key) it serves HTTPS. */
export async function startPushReceiver(
  options: { tls?: { cert: string; key: string } } = {},
): Promise<PushReceiver> {
  const handle: RequestListener = (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const push: ReceivedPush = {
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
      };
      receiver.received.push(push);
      response.writeHead(receiver.answer(push)).end();
    });
  };
  const server = options.tls === undefined ? createServer(handle) : createHttpsServer(options.tls, handle);
  server.on('tlsClientError', (error: Error) => receiver.tlsFailures.push(error));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = options.tls === undefined ? 'http' : 'https';
  const receiver: PushReceiver = {
    url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: [],
    tlsFailures: [],
    answer: () => 201,
    subscriber() {
      const ecdh = createECDH('prime256v1');
      const publicKey = ecdh.generateKeys();
      const auth = randomBytes(16).toString('base64url');
      const path = `/push/${randomBytes(8).toString('hex')}`;
      return {
        endpoint: `${receiver.url}${path}`,
        keys: { p256dh: publicKey.toString('base64url'), auth },
        received: () => receiver.received.filter((push) => push.path === path),
        open: (push) =>
          JSON.parse(
            decrypt(push.body, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }).toString('utf8'),
          ) as Record<string, unknown>,
      };
    },
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) {
          throw new Error(
            `the push receiver did not get what was expected within ${timeoutMs} ms; got ` +
              receiver.received.map((push) => push.path).join(', '),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}

/** What a push's `Authorization: vapid t=<JWT>, k=<key>` header says (RFC 8292), and whether it holds. */
export interface VapidAuthorization {
  /** Whether the JWT's ES256 signature verifies against `publicKey` (and `k=` is that key). */
  valid: boolean;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/**
 * Checks a push's VAPID header as a push service does: the JWT signed with ES256 by the private key of
 * `publicKey` (base64url, an uncompressed P-256 point, as GET /v1/push/vapid-public-key gives it).
 */
export function readVapidAuthorization(authorization: string, publicKey: string): VapidAuthorization {
  const match = /^vapid t=([\w-]+)\.([\w-]+)\.([\w-]+), k=([\w-]+)$/.exec(authorization);
  if (match === null) throw new Error(`not a VAPID authorization: ${authorization}`);
  const [, header = '', claims = '', signature = '', k = ''] = match;
  const point = Buffer.from(publicKey, 'base64url');
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
  const signed = verify(
    'sha256',
    Buffer.from(`${header}.${claims}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  const json = (part: string) =>
    JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  return { valid: signed && k === publicKey, header: json(header), claims: json(claims) };
}
