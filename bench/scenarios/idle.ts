import type { BenchResult } from '../lib/report.ts';
import { createTenant, processStats } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';
import { SocketFleet } from '../lib/sockets.ts';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 15,000 idle authenticated sockets on one server process: memory per socket. */
export async function idle(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = { sockets: isQuick ? 500 : 15_000, warmup_sockets: 200, generator_threads: 2 };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database);
  const pid = server.child.pid ?? 0;
  try {
    const tenant = await createTenant(server.url);
    const wsUrl = `${server.url.replace(/^http/, 'ws')}/v1/ws`;
    // Warm-up: the first sockets load and compile the code paths they use; that is not per-socket memory.
    const warmup = SocketFleet.start(
      {
        wsUrl,
        apiKey: tenant.apiKey,
        users: Array.from({ length: params.warmup_sockets }, (_, i) => `w${i}`),
        connectConcurrency: 50,
      },
      1,
    );
    await warmup.connect();
    await warmup.close();
    await settle(3000);
    const before = processStats(pid).rssKiB;
    const fleet = SocketFleet.start(
      {
        wsUrl,
        apiKey: tenant.apiKey,
        users: Array.from({ length: params.sockets }, (_, i) => `u${i}`),
        connectConcurrency: 100,
      },
      params.generator_threads,
    );
    const started = performance.now();
    const connected = await fleet.connect();
    const connectSeconds = (performance.now() - started) / 1000;
    await settle(5000);
    const after = processStats(pid).rssKiB;
    await fleet.close();
    return {
      scenario: 'idle',
      db,
      params,
      figures: {
        sockets: connected.connected,
        kib_per_socket: (after - before) / Math.max(1, connected.connected),
        rss_before_mib: before / 1024,
        rss_after_mib: after / 1024,
        connects_per_s: connected.connected / connectSeconds,
        errors: connected.failed,
      },
      targets:
        db === 'postgres' && !isQuick
          ? { kib_per_socket: { max: 8 }, errors: { max: 0 } }
          : { errors: { max: 0 } },
      notes: [
        'kib_per_socket: growth of the server process resident set (VmRSS) from before the sockets connect to 5 s after the last one did, divided by the sockets',
        'each socket is a distinct user, authenticated with a user token; its user is created on first sight',
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
