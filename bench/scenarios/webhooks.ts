import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { ADMIN_TOKEN, call, createBenchDatabase, startBenchServer, type BenchServer } from '../lib/server.ts';
import { runLoad } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';

/**
 * A tenant backend's receivers in the generator's process: answers 204 at once and records, per delivery,
 * the time from the event's logging (its `ts`, taken in the sending transaction) to its arrival.
 */
interface Receiver {
  url: string;
  received: number;
  /** Arrival times (ms since the epoch) of the first and latest delivery since `reset`. */
  first: number;
  last: number;
  latency: hdr.Histogram;
  reset(): void;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: 0,
    first: 0,
    last: 0,
    latency: hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 600_000,
      numberOfSignificantValueDigits: 3,
    }),
    reset() {
      receiver.received = 0;
      receiver.first = 0;
      receiver.last = 0;
      receiver.latency.reset();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now = Date.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { ts: string } };
      receiver.received += 1;
      if (receiver.first === 0) receiver.first = now;
      receiver.last = now;
      receiver.latency.recordValue(Math.max(1, now - Date.parse(body.data.ts)));
      response.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** Waits until the receiver has `count` deliveries, or `timeoutMs` passed. */
async function drained(receiver: Receiver, count: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (receiver.received < count) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

async function setUpTenant(server: BenchServer, conversationCount: number) {
  const { api_key } = await call<{ api_key: { secret: string } }>(
    server.url,
    'POST',
    '/v1/admin/tenants',
    ADMIN_TOKEN,
    { name: `bench-${conversationCount}-${Date.now()}` },
  );
  const key = api_key.secret;
  const conversations: { id: string; members: string[] }[] = [];
  for (let start = 0; start < conversationCount; start += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, conversationCount - start) }, async (_, offset) => {
        const members = [`a${start + offset}`, `b${start + offset}`];
        for (const userId of members) await call(server.url, 'PUT', `/v1/users/${userId}`, key, {});
        const created = await call<{ id: string }>(
          server.url,
          'POST',
          '/v1/conversations',
          key,
          { type: 'group', members: [members[1]] },
          members[0],
        );
        return { id: created.id, members };
      }),
    );
    conversations.push(...batch);
  }
  return { key, conversations };
}

/** Messages a load run stored: its answers that were not errors. */
const created = (load: { completed: number; errors: number }) => load.completed - load.errors;

const subscribe = (server: BenchServer, key: string, url: string) =>
  call(server.url, 'POST', '/v1/webhooks', key, { url, events: ['message.created'] });

/**
 * Webhooks: deliveries per second to local receivers and the latency from an event's logging to its
 * arrival, at a stated rate and flat out; and what having endpoints subscribed costs `send-rest`.
 */
export async function webhooks(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    conversations: isQuick ? 50 : 500,
    clients: 64,
    generator_threads: 2,
    offered_msg_per_s: isQuick ? 100 : 500,
    offered_s: isQuick ? 3 : 10,
    flat_out_endpoints: 4,
    flat_out_s: isQuick ? 3 : 10,
    send_rest_s: isQuick ? 2 : 10,
  };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database, { PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' });
  const receivers: Receiver[] = [];
  try {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const figures: Record<string, number> = {};

    // send-rest with no endpoint, then 1 and 10 (each in a tenant of its own), closed loop.
    let expected = 0;
    for (const endpoints of [0, 1, 10]) {
      const { key, conversations } = await setUpTenant(server, params.conversations);
      for (let i = 0; i < endpoints; i += 1) await subscribe(server, key, receiver.url);
      const job = {
        kind: 'send' as const,
        base: server.url,
        apiKey: key,
        conversations,
        connections: params.clients,
      };
      const warm = await runLoad({ ...job, durationMs: 1000 }, params.generator_threads);
      const sent = await runLoad({ ...job, durationMs: params.send_rest_s * 1000 }, params.generator_threads);
      figures[`send_rest_msg_per_s_${endpoints}_endpoints`] = sent.requestsPerSecond;
      expected += (created(warm) + created(sent)) * endpoints;
      // Let the deliveries of this round finish before the next is measured.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const baseline = figures.send_rest_msg_per_s_0_endpoints ?? 0;
    for (const endpoints of [1, 10]) {
      const withThem = figures[`send_rest_msg_per_s_${endpoints}_endpoints`] ?? 0;
      figures[`send_rest_cost_pct_${endpoints}_endpoints`] =
        baseline === 0 ? 0 : Math.round(((baseline - withThem) / baseline) * 1000) / 10;
    }
    // Every delivery of the send-rest rounds arrives before deliveries are measured: the receiver is shared,
    // and a delivery of theirs arriving later would count as one of the next phase, late by minutes.
    figures.send_rest_backlog_drained = (await drained(receiver, expected, isQuick ? 120_000 : 300_000)) ? 1 : 0;

    // Latency at a stated rate: one endpoint, messages offered at `offered_msg_per_s`.
    {
      const { key, conversations } = await setUpTenant(server, params.conversations);
      await subscribe(server, key, receiver.url);
      receiver.reset();
      const job = {
        kind: 'send' as const,
        base: server.url,
        apiKey: key,
        conversations,
        connections: params.clients,
      };
      const sent = await runLoad(
        { ...job, durationMs: params.offered_s * 1000, ratePerSecond: params.offered_msg_per_s },
        params.generator_threads,
      );
      const complete = await drained(receiver, created(sent), 60_000);
      figures[`delivery_p50_ms_at_${params.offered_msg_per_s}`] = receiver.latency.getValueAtPercentile(50);
      figures[`delivery_p99_ms_at_${params.offered_msg_per_s}`] = receiver.latency.getValueAtPercentile(99);
      figures.lost_at_offered = complete ? 0 : created(sent) - receiver.received;
    }

    // Flat out: several endpoints, sends as fast as they go; deliveries per second until all arrived.
    {
      const { key, conversations } = await setUpTenant(server, params.conversations);
      for (let i = 0; i < params.flat_out_endpoints; i += 1) await subscribe(server, key, receiver.url);
      receiver.reset();
      const started = Date.now();
      const job = {
        kind: 'send' as const,
        base: server.url,
        apiKey: key,
        conversations,
        connections: params.clients,
      };
      const sent = await runLoad({ ...job, durationMs: params.flat_out_s * 1000 }, params.generator_threads);
      const expected = created(sent) * params.flat_out_endpoints;
      const complete = await drained(receiver, expected, 300_000);
      figures.deliveries_per_s = Math.round(
        (receiver.received / Math.max(1, receiver.last - started)) * 1000,
      );
      figures.flat_out_delivery_p99_ms = receiver.latency.getValueAtPercentile(99);
      figures.lost_flat_out = complete ? 0 : expected - receiver.received;
    }
    return {
      scenario: 'webhooks',
      db,
      params,
      figures,
      targets:
        db === 'postgres' && !isQuick
          ? {
              deliveries_per_s: { min: 2000 },
              [`delivery_p99_ms_at_${params.offered_msg_per_s}`]: { max: 200 },
              send_rest_cost_pct_1_endpoints: { max: 5 },
              send_rest_cost_pct_10_endpoints: { max: 5 },
              lost_at_offered: { max: 0 },
              lost_flat_out: { max: 0 },
              send_rest_backlog_drained: { min: 1 },
            }
          : { lost_at_offered: { max: 0 }, lost_flat_out: { max: 0 }, send_rest_backlog_drained: { min: 1 } },
      notes: [
        'server: one process; generator and receivers: this process and two worker threads; all share the same cores',
        'latency: from the event logged (its ts, in the sending transaction) to its arrival at the receiver',
        `deliveries_per_s: ${params.flat_out_endpoints} endpoints, from the first send to the last arrival`,
      ],
    };
  } finally {
    for (const receiver of receivers) await receiver.close();
    await server.stop();
    await database.drop();
  }
}
