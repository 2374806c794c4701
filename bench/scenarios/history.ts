import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import path from 'node:path';
import pg from 'pg';
import { runLoad } from '../lib/load.ts';
import type { BenchResult } from '../lib/report.ts';
import {
  ADMIN_TOKEN,
  call,
  createBenchDatabase,
  startBenchServer,
  type BenchDatabase,
} from '../lib/server.ts';

/** Bulk-inserts `count` messages into one conversation in SQL (as the owner), in batches of 100,000. */
async function seedMessages(
  database: BenchDatabase,
  tenantId: string,
  conversationId: string,
  count: number,
) {
  const statements = (from: number, to: number) => `
    INSERT INTO messages (tenant_id, conversation_id, seq, id, sender_id, text)
    SELECT '${tenantId}', '${conversationId}', g, gen_random_uuid(), 'alice', 'history message number ' || g
    FROM generate_series(${from}, ${to}) g`;
  const finish = `UPDATE conversations SET last_message_seq = ${count}, last_main_seq = ${count}, first_main_seq = 1
    WHERE tenant_id = '${tenantId}' AND id = '${conversationId}'`;
  if (database.url !== undefined) {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    for (let from = 1; from <= count; from += 100_000)
      await client.query(statements(from, Math.min(count, from + 99_999)));
    await client.query(finish);
    await client.end();
    return;
  }
  const db = new PGlite({
    dataDir: path.join(database.dataDir, 'pglite'),
    extensions: { pg_trgm, btree_gin },
  });
  for (let from = 1; from <= count; from += 100_000)
    await db.exec(statements(from, Math.min(count, from + 99_999)));
  await db.exec(finish);
  await db.close();
}

/** Random pages of 50 from one conversation of 1,000,000 messages. */
export async function history(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    messages: isQuick ? 20_000 : 1_000_000,
    page: 50,
    clients: 16,
    generator_threads: 2,
    measure_s: isQuick ? 2 : 10,
  };
  const database = await createBenchDatabase(db);
  let server = await startBenchServer(database);
  try {
    const created = await call<{ tenant: { id: string }; api_key: { secret: string } }>(
      server.url,
      'POST',
      '/v1/admin/tenants',
      ADMIN_TOKEN,
      { name: 'bench' },
    );
    const key = created.api_key.secret;
    await call(server.url, 'PUT', '/v1/users/alice', key, {});
    const conversation = await call<{ id: string }>(
      server.url,
      'POST',
      '/v1/conversations',
      key,
      { type: 'group' },
      'alice',
    );
    const seedStart = performance.now();
    if (db === 'embedded') await server.stop(); // PGlite is one process's at a time
    await seedMessages(database, created.tenant.id, conversation.id, params.messages);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    if (db === 'embedded') server = await startBenchServer(database);
    const job = {
      kind: 'history' as const,
      base: server.url,
      apiKey: key,
      conversationId: conversation.id,
      userId: 'alice',
      maxSeq: params.messages,
      connections: params.clients,
    };
    await runLoad({ ...job, durationMs: 2000 }, params.generator_threads);
    const result = await runLoad({ ...job, durationMs: params.measure_s * 1000 }, params.generator_threads);
    return {
      scenario: 'history',
      db,
      params,
      figures: {
        pages_per_s: result.requestsPerSecond,
        p50_ms: result.p50Ms,
        p90_ms: result.p90Ms,
        p99_ms: result.p99Ms,
        max_ms: result.maxMs,
        seed_s: seedSeconds,
        errors: result.errors,
      },
      targets:
        db === 'postgres' && !isQuick ? { p99_ms: { max: 5 }, errors: { max: 0 } } : { errors: { max: 0 } },
      notes: ['closed loop: 16 clients as fast as pages come back; latency is under that load'],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
