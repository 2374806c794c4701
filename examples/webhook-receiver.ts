// A tenant backend's webhook endpoint: verifies each delivery with the Standard Webhooks reference library,
// skips repeats by webhook-id, and prints the event. docs/WEBHOOKS.md walks through it.
//
//   PARLEY_WEBHOOK_SECRET=whsec_… PORT=8080 node --import tsx examples/webhook-receiver.ts
import { createServer } from 'node:http';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

const secret = process.env.PARLEY_WEBHOOK_SECRET;
if (secret === undefined)
  throw new Error('set PARLEY_WEBHOOK_SECRET to the whsec_… shown when the webhook was created');
const verifier = new Webhook(secret);
// Keep this in your database: a delivery whose answer was lost comes again with the same webhook-id.
const handled = new Set<string>();

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    // The signature covers the body as sent: verify the raw text before parsing it.
    const body = Buffer.concat(chunks).toString('utf8');
    let event: { type: string; timestamp: string; data: unknown };
    try {
      // Checks webhook-signature (any one of its signatures) and that webhook-timestamp is within 5 minutes.
      event = verifier.verify(body, {
        'webhook-id': String(request.headers['webhook-id']),
        'webhook-timestamp': String(request.headers['webhook-timestamp']),
        'webhook-signature': String(request.headers['webhook-signature']),
      }) as typeof event;
    } catch (error) {
      response.writeHead(error instanceof WebhookVerificationError ? 401 : 400).end();
      return;
    }
    const id = String(request.headers['webhook-id']);
    if (!handled.has(id)) {
      handled.add(id);
      // Do the work here, quickly: an answer later than 15 s counts as a failure and comes again.
      console.log(JSON.stringify({ id, type: event.type, data: event.data }));
    }
    response.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${String(process.env.PORT ?? 8080)}`);
});
