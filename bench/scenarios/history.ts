import { runClosedThenOpen } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';
import { createTenant, databaseCpuSeconds, processStats, putUsers, runOwnerSql } from '../lib/seed.ts';
import { call, createBenchDatabase, startBenchServer } from '../lib/server.ts';

/** Random pages of 50 from one conversation of 1,000,000 messages. */
export async function history(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    messages: isQuick ? 20_000 : 1_000_000,
    page: 50,
    clients: 16,
    generator_threads: 2,
    measure_s: isQuick ? 2 : 10,
    offered_pages_per_s: isQuick ? 50 : 200,
  };
  const database = await createBenchDatabase(db);
  let server = await startBenchServer(database);
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, ['alice']);
    const conversation = await call<{ id: string }>(
      server.url,
      'POST',
      '/v1/conversations',
      tenant.apiKey.secret,
      { type: 'group' },
      'alice',
    );
    const seedStart = performance.now();
    if (db === 'embedded') await server.stop(); // PGlite is one process's at a time
    const batch = 100_000;
    const statements: string[] = [];
    for (let from = 1; from <= params.messages; from += batch) {
      statements.push(`
        INSERT INTO messages (tenant_id, conversation_id, seq, id, sender_id, text)
        SELECT '${tenant.id}', '${conversation.id}', g, gen_random_uuid(), 'alice', 'history message number ' || g
        FROM generate_series(${from}, ${Math.min(params.messages, from + batch - 1)}) g`);
    }
    statements.push(`UPDATE conversations
      SET last_message_seq = ${params.messages}, last_main_seq = ${params.messages}, first_main_seq = 1
      WHERE tenant_id = '${tenant.id}' AND id = '${conversation.id}'`);
    // Messages inserted in bulk, not sent: their unread counters are counted afterwards.
    statements.push('SELECT parley_recount_unread()');
    // As a long-lived table would be: vacuumed (hint bits set, visibility map current) and analyzed.
    statements.push('VACUUM ANALYZE messages');
    await runOwnerSql(database, statements);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    if (db === 'embedded') server = await startBenchServer(database);

    // Random pages anywhere in the conversation: 10,000 distinct before_seq values.
    const paths = Array.from({ length: 10_000 }, () => {
      const beforeSeq = 51 + Math.floor(Math.random() * (params.messages - 50));
      return `/v1/conversations/${conversation.id}/messages?before_seq=${beforeSeq}&limit=${params.page}`;
    });
    const job = {
      kind: 'get' as const,
      base: server.url,
      apiKey: tenant.apiKey.secret,
      paths,
      userId: 'alice',
      connections: params.clients,
    };
    const pid = server.child.pid ?? 0;
    const cpuBefore = processStats(pid).cpuSeconds + (await databaseCpuSeconds(database));
    const { max, offered } = await runClosedThenOpen(job, {
      measureMs: params.measure_s * 1000,
      ratePerSecond: params.offered_pages_per_s,
      threads: params.generator_threads,
    });
    const cpuSeconds = processStats(pid).cpuSeconds + (await databaseCpuSeconds(database)) - cpuBefore;
    const pages = max.completed + offered.completed;
    return {
      scenario: 'history',
      db,
      params,
      figures: {
        pages_per_s: max.requestsPerSecond,
        p99_ms_at_max: max.p99Ms,
        p50_ms: offered.p50Ms,
        p90_ms: offered.p90Ms,
        p99_ms: offered.p99Ms,
        max_ms: offered.maxMs,
        cpu_ms_per_page: (cpuSeconds * 1000) / Math.max(1, pages),
        seed_s: seedSeconds,
        errors: max.errors + offered.errors,
      },
      targets:
        db === 'postgres' && !isQuick ? { p99_ms: { max: 5 }, errors: { max: 0 } } : { errors: { max: 0 } },
      notes: [
        `pages_per_s and p99_ms_at_max: ${params.clients} clients in a closed loop (as fast as pages come back)`,
        `p50/p90/p99/max_ms: ${params.offered_pages_per_s} pages/s offered in an open loop, latency from each request's intended start`,
        'cpu_ms_per_page: CPU (user + system) of the server process and its PostgreSQL backends over the warm-up and both loops, per page of both loops',
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
