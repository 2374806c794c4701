import { ADMIN_TOKEN, call, createBenchDatabase, startBenchServer } from '../lib/server.ts';
import { runLoad } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';

/** 64 keep-alive clients sending to 1,000 conversations over REST: throughput, then p99 at 1,000 msg/s offered. */
export async function sendRest(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    conversations: isQuick ? 50 : 1000,
    clients: 64,
    generator_threads: 2,
    measure_s: isQuick ? 2 : 15,
    offered_msg_per_s: isQuick ? 200 : 1000,
    offered_s: isQuick ? 2 : 10,
  };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database);
  try {
    const { api_key } = await call<{ api_key: { secret: string } }>(
      server.url,
      'POST',
      '/v1/admin/tenants',
      ADMIN_TOKEN,
      {
        name: 'bench',
      },
    );
    const key = api_key.secret;
    const conversations: { id: string; members: string[] }[] = [];
    for (let start = 0; start < params.conversations; start += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, params.conversations - start) }, async (_, offset) => {
          const index = start + offset;
          const members = [`a${index}`, `b${index}`];
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
    const job = {
      kind: 'send' as const,
      base: server.url,
      apiKey: key,
      conversations,
      connections: params.clients,
    };
    await runLoad({ ...job, durationMs: 2000 }, params.generator_threads); // warm-up
    const throughput = await runLoad(
      { ...job, durationMs: params.measure_s * 1000 },
      params.generator_threads,
    );
    const offered = await runLoad(
      { ...job, durationMs: params.offered_s * 1000, ratePerSecond: params.offered_msg_per_s },
      params.generator_threads,
    );
    return {
      scenario: 'send-rest',
      db,
      params,
      figures: {
        msg_per_s: throughput.requestsPerSecond,
        p50_ms_at_max: throughput.p50Ms,
        p99_ms_at_max: throughput.p99Ms,
        [`p50_ms_at_${params.offered_msg_per_s}`]: offered.p50Ms,
        [`p99_ms_at_${params.offered_msg_per_s}`]: offered.p99Ms,
        errors: throughput.errors + offered.errors,
      },
      targets:
        db === 'postgres' && !isQuick
          ? { msg_per_s: { min: 5000 }, p99_ms_at_1000: { max: 15 }, errors: { max: 0 } }
          : { errors: { max: 0 } },
      notes: ['server: one process; generator: two worker threads; both share the same cores'],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
