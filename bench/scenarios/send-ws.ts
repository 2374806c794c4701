import type { BenchResult } from '../lib/report.ts';
import { createConversation, createTenant, inParallel, putUsers } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';
import { SocketFleet } from '../lib/sockets.ts';

/** 1,000 sockets in 100 conversations of 10; messages sent over the sockets; send → delivered latency. */
export async function sendWs(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    conversations: isQuick ? 10 : 100,
    members_per_conversation: 10,
    offered_msg_per_s: isQuick ? 100 : 2000,
    light_msg_per_s: isQuick ? 20 : 500,
    measure_s: isQuick ? 2 : 10,
    generator_threads: 2,
  };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database);
  const users = Array.from(
    { length: params.conversations * params.members_per_conversation },
    (_, i) => `u${i}`,
  );
  let fleet: SocketFleet | undefined;
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, users);
    const conversationOfUser: Record<string, string> = {};
    await inParallel(
      Array.from({ length: params.conversations }, (_, i) => i),
      8,
      async (index) => {
        const members = users.slice(
          index * params.members_per_conversation,
          (index + 1) * params.members_per_conversation,
        );
        const [creator = '', ...others] = members;
        const id = await createConversation(server.url, tenant, creator, 'group', others);
        for (const member of members) conversationOfUser[member] = id;
      },
    );
    fleet = SocketFleet.start(
      {
        wsUrl: `${server.url.replace(/^http/, 'ws')}/v1/ws`,
        apiKey: tenant.apiKey,
        users,
        connectConcurrency: 50,
      },
      params.generator_threads,
    );
    const connected = await fleet.connect();
    await fleet.measure(2000, 1000, { ratePerSecond: params.light_msg_per_s, conversationOfUser }); // warm-up
    const light = await fleet.measure(params.measure_s * 1000, 2000, {
      ratePerSecond: params.light_msg_per_s,
      conversationOfUser,
    });
    const full = await fleet.measure(params.measure_s * 1000, 3000, {
      ratePerSecond: params.offered_msg_per_s,
      conversationOfUser,
    });
    const expected = full.sent * (params.members_per_conversation - 1);
    return {
      scenario: 'send-ws',
      db,
      params,
      figures: {
        sockets: connected.connected,
        p50_ms: full.p50Ms,
        p90_ms: full.p90Ms,
        p99_ms: full.p99Ms,
        max_ms: full.maxMs,
        acked_msg_per_s: full.acked / params.measure_s,
        deliveries_per_s: full.deliveries / params.measure_s,
        undelivered: expected - full.deliveries,
        [`p50_ms_at_${params.light_msg_per_s}`]: light.p50Ms,
        [`p99_ms_at_${params.light_msg_per_s}`]: light.p99Ms,
        errors: connected.failed + full.sendErrors + light.sendErrors,
      },
      targets:
        db === 'postgres' && !isQuick
          ? { p50_ms: { max: 3 }, p99_ms: { max: 25 }, errors: { max: 0 } }
          : { errors: { max: 0 } },
      notes: [
        `${params.offered_msg_per_s} msg/s offered over the sockets (open loop, each worker its share); latency from each message's intended send time to its arrival at each other member's socket`,
        'undelivered: deliveries still missing when the measurement ended (a drain of 3 s after the last send)',
      ],
    };
  } finally {
    await fleet?.close();
    await server.stop();
    await database.drop();
  }
}
