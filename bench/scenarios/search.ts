import { runClosedThenOpen } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';
import { createConversation, createTenant, inParallel, putUsers, runOwnerSql } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ra',
  'ten',
  'vor',
  'sul',
  'pe',
  'dri',
  'no',
  'bas',
  'que',
  'fin',
  'gol',
  'hu',
  'zet',
  'ar',
  'bel',
];

/** 5,832 made-up words of three syllables: a vocabulary with no stop words, each word as likely as any. */
function vocabulary(): string[] {
  const words: string[] = [];
  for (const a of SYLLABLES) for (const b of SYLLABLES) for (const c of SYLLABLES) words.push(a + b + c);
  return words;
}

/** 1,000,000 messages in 1,000 conversations; the searching user is a member of 100 of them. */
export async function search(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    conversations: isQuick ? 100 : 1000,
    member_of: isQuick ? 10 : 100,
    messages_per_conversation: isQuick ? 200 : 1000,
    words_per_message: 8,
    vocabulary: vocabulary().length,
    clients: 8,
    generator_threads: 2,
    measure_s: isQuick ? 2 : 10,
    offered_queries_per_s: isQuick ? 20 : 50,
  };
  const database = await createBenchDatabase(db);
  let server = await startBenchServer(database);
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, ['searcher', 'other', 'third']);
    const conversations = await inParallel(
      Array.from({ length: params.conversations }, (_, i) => i),
      8,
      (index) =>
        createConversation(server.url, tenant, 'other', 'group', [
          index < params.member_of ? 'searcher' : 'third',
        ]),
    );
    const words = vocabulary();
    const seedStart = performance.now();
    if (db === 'embedded') await server.stop(); // PGlite is one process's at a time
    const statements: string[] = [];
    const perStatement = Math.max(1, Math.floor(100_000 / params.messages_per_conversation));
    for (let start = 0; start < conversations.length; start += perStatement) {
      const ids = conversations.slice(start, start + perStatement).map((id) => `'${id}'`);
      statements.push(`
        WITH vocab AS (SELECT ARRAY[${words.map((word) => `'${word}'`).join(',')}] AS v)
        INSERT INTO messages (tenant_id, conversation_id, seq, id, sender_id, text)
        SELECT '${tenant.id}', c.id, s, gen_random_uuid(), 'other',
          (SELECT string_agg(vocab.v[1 + floor(random() * ${words.length})::int], ' ')
           FROM vocab, generate_series(1, ${params.words_per_message}) w WHERE s > 0)
        FROM unnest(ARRAY[${ids.join(',')}]::uuid[]) c(id),
             generate_series(1, ${params.messages_per_conversation}) s`);
    }
    statements.push(`UPDATE conversations SET last_message_seq = ${params.messages_per_conversation},
      last_main_seq = ${params.messages_per_conversation}, first_main_seq = 1 WHERE tenant_id = '${tenant.id}'`);
    // As a long-lived table would be: vacuumed (hint bits set, visibility map current) and analyzed.
    // Messages inserted in bulk, not sent: their unread counters are counted afterwards.
    statements.push('SELECT parley_recount_unread()');
    statements.push('VACUUM ANALYZE');
    await runOwnerSql(database, statements);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    if (db === 'embedded') server = await startBenchServer(database);

    // One word in most queries, two in some: each word is in about 1 message of 730 over the whole tenant.
    const paths = Array.from({ length: 2000 }, (_, index) => {
      const pick = () => words[Math.floor(Math.random() * words.length)] ?? '';
      const q = index % 4 === 0 ? `${pick()} ${pick()}` : pick();
      return `/v1/search/messages?q=${encodeURIComponent(q)}&limit=20`;
    });
    const job = {
      kind: 'get' as const,
      base: server.url,
      apiKey: tenant.apiKey.secret,
      paths,
      userId: 'searcher',
      connections: params.clients,
    };
    const { max, offered } = await runClosedThenOpen(job, {
      measureMs: params.measure_s * 1000,
      ratePerSecond: params.offered_queries_per_s,
      threads: params.generator_threads,
    });
    return {
      scenario: 'search',
      db,
      params,
      figures: {
        queries_per_s: max.requestsPerSecond,
        p99_ms_at_max: max.p99Ms,
        p50_ms: offered.p50Ms,
        p90_ms: offered.p90Ms,
        p99_ms: offered.p99Ms,
        max_ms: offered.maxMs,
        seed_s: seedSeconds,
        errors: max.errors + offered.errors,
      },
      targets:
        db === 'postgres' && !isQuick ? { p99_ms: { max: 50 }, errors: { max: 0 } } : { errors: { max: 0 } },
      notes: [
        `queries_per_s and p99_ms_at_max: ${params.clients} clients in a closed loop`,
        `p50/p90/p99/max_ms: ${params.offered_queries_per_s} queries/s offered in an open loop, latency from each request's intended start`,
        'messages are seeded in SQL (8 words each from a vocabulary of made-up words), then VACUUM ANALYZE',
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
