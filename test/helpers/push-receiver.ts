import { createECDH, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
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

/** A push service on loopback (plain HTTP): records every request, answers as told (201 by default). */
export interface PushReceiver {
  url: string;
  received: ReceivedPush[];
  /** The status for each request; 201 unless changed. */
  answer: (push: ReceivedPush) => number;
  /** A new subscriber: an ECDH P-256 key pair and 16 random auth bytes, as a browser makes them. */
  subscriber(): TestSubscriber;
  /** Resolves once `predicate` holds (polled), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startPushReceiver(): Promise<PushReceiver> {
  const server = createServer((request, response) => {
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: PushReceiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: [],
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
