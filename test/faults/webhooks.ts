import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expectOk, type Ledger } from './http.ts';
import { sleep } from './random.ts';
import type { StoredMessage } from './setup.ts';

/**
 * The tenants' webhook receiver, in the suite's own process (never faulted): every tenant of the workload
 * subscribes it to `message.created`, and at the end every stored message must have arrived at least once
 * (lost = 0), whatever was killed or restarted meanwhile. Repeats are allowed (at least once), and counted.
 */
export class WebhookCounter {
  /** Arrivals per message id. */
  readonly arrivals = new Map<string, number>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            data?: { data?: { id?: unknown } };
          };
          const id = body.data?.data?.id;
          if (typeof id === 'string') this.arrivals.set(id, (this.arrivals.get(id) ?? 0) + 1);
          response.writeHead(204).end();
        } catch {
          response.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** Subscribes a tenant of the workload. */
  async subscribe(ledger: Ledger, base: string, apiKey: string): Promise<void> {
    await expectOk(ledger, base, 'POST', '/v1/webhooks', apiKey, {
      url: this.url,
      events: ['message.created'],
    });
  }

  /**
   * Waits until every stored message has arrived, or `timeoutMs` passed (a delivery whose attempt a
   * killed server left behind goes again after its lane's 60 s lease); returns what is still missing.
   */
  async missing(stored: StoredMessage[], timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = stored.filter((message) => !this.arrivals.has(message.id)).map((message) => message.id);
      if (missing.length === 0 || Date.now() > deadline) return missing;
      await sleep(200);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.closeAllConnections();
      if (this.server === undefined) resolve();
      else this.server.close(() => resolve());
    });
  }
}
