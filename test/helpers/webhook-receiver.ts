import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed (every delivery is JSON). */
  json: {
    type: string;
    timestamp: string;
    data: Record<string, unknown> & { data?: Record<string, unknown> };
  };
}

/**
 * What the receiver answers a request with: a status, `hang` (never answers), or `cut` (the connection
 * is destroyed once the request has arrived, as a receiver killed mid-request would leave it).
 */
export type Answer = number | 'hang' | 'cut';

/** A tenant backend's webhook endpoint on loopback: records every request and answers as told. */
export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Decides each answer from the request and how many came before it; 200 by default. */
  answer: (request: ReceivedWebhook, index: number) => Answer;
  /** Resolves once `predicate` holds of what was received (polled), or rejects after `timeoutMs`. */
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on loopback, on `port` when given (a receiver coming back where it was), else any. */
export async function startWebhookReceiver(port = 0): Promise<WebhookReceiver> {
  const hanging: ServerResponse[] = [];
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    answer: () => 200,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver.received)) {
        if (Date.now() > deadline) {
          throw new Error(
            `the receiver did not get what was expected within ${timeoutMs} ms; got ${receiver.received.length}: ` +
              receiver.received.map((request) => request.json.type).join(', '),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const received: ReceivedWebhook = {
        headers: request.headers,
        body,
        json: JSON.parse(body) as ReceivedWebhook['json'],
      };
      const index = receiver.received.length;
      receiver.received.push(received);
      const answer = receiver.answer(received, index);
      if (answer === 'hang') {
        hanging.push(response);
        return;
      }
      if (answer === 'cut') {
        request.socket.destroy();
        return;
      }
      response.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}
