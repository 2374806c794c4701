import { Pool } from 'undici';
import type { BenchResult } from '../lib/report.ts';
import { createConversation, createTenant, processStats, putUsers } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';
import { SocketFleet, type DeliveryResult } from '../lib/sockets.ts';

const now = () => performance.timeOrigin + performance.now();

/** Sends `rate` msg/s for `durationMs` over REST (open loop), each text the time it was meant to leave. */
async function sendOpenLoop(
  pool: Pool,
  path: string,
  headers: Record<string, string>,
  rate: number,
  durationMs: number,
): Promise<{ sent: number; errors: number }> {
  const start = now();
  const total = Math.floor((rate * durationMs) / 1000);
  const inFlight: Promise<void>[] = [];
  let errors = 0;
  for (let index = 0; index < total; index++) {
    const intended = start + (index * 1000) / rate;
    const wait = intended - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      pool
        .request({ method: 'POST', path, headers, body: JSON.stringify({ text: `t:${intended}` }) })
        .then(async (response) => {
          await response.body.dump();
          if (response.statusCode >= 400) errors++;
        })
        .catch(() => {
          errors++;
        }),
    );
  }
  await Promise.all(inFlight);
  return { sent: total, errors };
}

interface Step {
  msg_per_s: number;
  deliveries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_s_per_1m_deliveries: number;
  send_errors: number;
}

/**
 * One channel whose members all hold a socket on one server process. Messages are sent to it at 4 msg/s
 * (20,000 deliveries/s with 5,000 members), then at doubling rates until p99 passes 100 ms.
 */
export async function fanout(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    members: isQuick ? 200 : 5000,
    first_msg_per_s: 4,
    step_s: isQuick ? 2 : 10,
    max_steps: isQuick ? 2 : 7,
    p99_limit_ms: 100,
    generator_threads: 2,
  };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database, { PARLEY_WS_MAX_CONNECTIONS_PER_USER: '5' });
  const pid = server.child.pid ?? 0;
  const users = Array.from({ length: params.members }, (_, i) => `u${i}`);
  let fleet: SocketFleet | undefined;
  const pool = new Pool(server.url, { connections: 16 });
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, users);
    const [owner = '', ...others] = users;
    const channel = await createConversation(server.url, tenant, owner, 'channel', others);
    fleet = SocketFleet.start(
      {
        wsUrl: `${server.url.replace(/^http/, 'ws')}/v1/ws`,
        apiKey: tenant.apiKey,
        users,
        connectConcurrency: 100,
      },
      params.generator_threads,
    );
    const connected = await fleet.connect();
    const path = `/v1/conversations/${channel}/messages`;
    const headers = {
      authorization: `Bearer ${tenant.apiKey.secret}`,
      'content-type': 'application/json',
      'x-parley-user': owner,
    };
    const step = async (rate: number, durationMs: number): Promise<Step> => {
      const cpuBefore = processStats(pid).cpuSeconds;
      const [delivered, sending] = await Promise.all([
        fleet?.measure(durationMs, 2000) as Promise<DeliveryResult>,
        sendOpenLoop(pool, path, headers, rate, durationMs),
      ]);
      const cpu = processStats(pid).cpuSeconds - cpuBefore;
      return {
        msg_per_s: rate,
        deliveries_per_s: delivered.deliveries / (durationMs / 1000),
        p50_ms: delivered.p50Ms,
        p99_ms: delivered.p99Ms,
        cpu_s_per_1m_deliveries: (cpu / Math.max(1, delivered.deliveries)) * 1e6,
        send_errors: sending.errors,
      };
    };
    await step(params.first_msg_per_s, 2000); // warm-up
    const steps: Step[] = [];
    for (let index = 0, rate = params.first_msg_per_s; index < params.max_steps; index++, rate *= 2) {
      const result = await step(rate, params.step_s * 1000);
      steps.push(result);
      console.log(
        `  fanout step: ${rate} msg/s, ${Math.round(result.deliveries_per_s)} deliveries/s, p99 ${result.p99_ms.toFixed(1)} ms, ${result.cpu_s_per_1m_deliveries.toFixed(2)} CPU s per 1M deliveries`,
      );
      if (result.p99_ms > params.p99_limit_ms) break;
    }
    const first = steps[0];
    const withinLimit = steps.filter((result) => result.p99_ms <= params.p99_limit_ms);
    return {
      scenario: 'fanout',
      db,
      params,
      figures: {
        sockets: connected.connected,
        deliveries_per_s_at_first: first?.deliveries_per_s ?? 0,
        cpu_s_per_1m_deliveries: first?.cpu_s_per_1m_deliveries ?? 0,
        p50_ms_at_20k: first?.p50_ms ?? 0,
        p99_ms_at_20k: first?.p99_ms ?? 0,
        max_deliveries_per_s: Math.max(0, ...withinLimit.map((result) => result.deliveries_per_s)),
        errors: connected.failed + steps.reduce((sum, result) => sum + result.send_errors, 0),
      },
      targets:
        db === 'postgres' && !isQuick
          ? { cpu_s_per_1m_deliveries: { max: 4 }, p99_ms_at_20k: { max: 15 }, errors: { max: 0 } }
          : { errors: { max: 0 } },
      notes: [
        `${params.members} member sockets on one server process; messages sent over REST by one member; latency from each message's intended send time to its arrival at each other member's socket`,
        "cpu_s_per_1m_deliveries and *_at_20k: the first step (4 msg/s); CPU is the server process's user + system time from /proc over the step",
        `max_deliveries_per_s: the highest step whose p99 stayed within ${params.p99_limit_ms} ms; steps: ${steps.map((result) => `${result.msg_per_s} msg/s → ${Math.round(result.deliveries_per_s)}/s p99 ${result.p99_ms.toFixed(1)} ms`).join('; ')}`,
      ],
    };
  } finally {
    await pool.close();
    await fleet?.close();
    await server.stop();
    await database.drop();
  }
}
