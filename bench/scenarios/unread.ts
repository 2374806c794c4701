import { runClosedThenOpen, type LoadResult } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';
import { createConversation, createTenant, inParallel, putUsers, runOwnerSql } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';

/** A user in 1,000 conversations with activity: GET /v1/unread and the first page of the conversation list. */
export async function unread(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    conversations: isQuick ? 50 : 1000,
    messages_per_conversation: 20,
    list_page: 50,
    clients: 8,
    generator_threads: 2,
    measure_s: isQuick ? 2 : 10,
    offered_per_s: isQuick ? 20 : 50,
  };
  const database = await createBenchDatabase(db);
  let server = await startBenchServer(database);
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, ['reader', 'writer']);
    const conversations = await inParallel(
      Array.from({ length: params.conversations }, (_, i) => i),
      8,
      () => createConversation(server.url, tenant, 'writer', 'group', ['reader']),
    );
    if (db === 'embedded') await server.stop(); // PGlite is one process's at a time
    const ids = `ARRAY[${conversations.map((id) => `'${id}'`).join(',')}]::uuid[]`;
    const count = params.messages_per_conversation;
    await runOwnerSql(database, [
      // Every seventh message mentions the reader.
      `INSERT INTO messages (tenant_id, conversation_id, seq, id, sender_id, text, mentions)
       SELECT '${tenant.id}', c.id, s, gen_random_uuid(), 'writer', 'message ' || s,
              CASE WHEN s % 7 = 0 THEN ARRAY['reader'] ELSE '{}'::text[] END
       FROM unnest(${ids}) c(id), generate_series(1, ${count}) s`,
      `UPDATE conversations SET last_message_seq = ${count}, last_main_seq = ${count}, first_main_seq = 1,
         last_activity_at = now() - random() * interval '30 days'
       WHERE tenant_id = '${tenant.id}'`,
      // The reader has read a random part of each conversation.
      `UPDATE conversation_members SET last_read_seq = floor(random() * ${count + 1})
       WHERE tenant_id = '${tenant.id}' AND user_id = 'reader'`,
      // Messages inserted in bulk, not sent: their unread counters are counted afterwards.
      'SELECT parley_recount_unread()',
      // As long-lived tables would be: vacuumed (hint bits set, visibility map current) and analyzed.
      'VACUUM ANALYZE',
    ]);
    if (db === 'embedded') server = await startBenchServer(database);

    const measure = async (path: string): Promise<{ max: LoadResult; offered: LoadResult }> => {
      const job = {
        kind: 'get' as const,
        base: server.url,
        apiKey: tenant.apiKey.secret,
        paths: [path],
        userId: 'reader',
        connections: params.clients,
      };
      return runClosedThenOpen(job, {
        measureMs: params.measure_s * 1000,
        ratePerSecond: params.offered_per_s,
        threads: params.generator_threads,
      });
    };
    const counts = await measure('/v1/unread');
    const list = await measure(`/v1/conversations?limit=${params.list_page}`);
    return {
      scenario: 'unread',
      db,
      params,
      figures: {
        unread_per_s: counts.max.requestsPerSecond,
        p50_ms: counts.offered.p50Ms,
        p99_ms: counts.offered.p99Ms,
        list_per_s: list.max.requestsPerSecond,
        list_p50_ms: list.offered.p50Ms,
        list_p99_ms: list.offered.p99Ms,
        errors: counts.max.errors + counts.offered.errors + list.max.errors + list.offered.errors,
      },
      targets:
        db === 'postgres' && !isQuick
          ? { p99_ms: { max: 20 }, list_p99_ms: { max: 20 }, errors: { max: 0 } }
          : { errors: { max: 0 } },
      notes: [
        `*_per_s: ${params.clients} clients in a closed loop; p50/p99: ${params.offered_per_s} requests/s offered in an open loop`,
        `p99_ms: GET /v1/unread (counts over all ${params.conversations} conversations); list_p99_ms: GET /v1/conversations?limit=${params.list_page}`,
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
