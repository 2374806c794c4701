import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { loadSqlSources } from '../src/db/sql-sources.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

/**
 * "What counts as unread" and "which conversations keep counters" are each written once, as inlined SQL
 * functions (src/db/functions/parley_is_unread.sql, parley_keeps_unread_counters.sql), and every count
 * applies them. reads-property.test.ts proves the counts right; this file proves the rule has one home
 * and that using it costs the scans nothing.
 */
describe('the unread rule', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('is inlined: a channel scan from a watermark is a range of the main-timeline index, no function call', async () => {
    const plan = await database.db.orm.transaction(async (tx) => {
      // An empty table would be read whole whatever the query says; what matters is that it can use the
      // partial index, which it can only if the rule's `thread_root_id IS NULL` reached the planner.
      await tx.execute(sql`SET LOCAL enable_seqscan = off`);
      const rows = rowsOf<{ 'QUERY PLAN': string }>(
        await tx.execute(
          sql.raw(`EXPLAIN SELECT * FROM parley_unread_scan(
            true, '${randomUUID()}', '${randomUUID()}', 'ann', 41)`),
        ),
      );
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('messages_main_timeline_idx');
    expect(plan).toMatch(/Index Cond: .*seq > '?41'?/);
    expect(plan).not.toMatch(/parley_is_unread/);
  });

  it('has one home per rule among the function sources', () => {
    const sources = loadSqlSources();
    const using = (pattern: RegExp) =>
      sources
        .filter((source) => pattern.test(source.text.replace(/--[^\n]*/g, '')))
        .map((source) => source.name);
    // Conversation types are told apart in one function only.
    expect(using(/'channel'/)).toEqual(['parley_keeps_unread_counters']);
    // The watermark moves forward in one function only; the others call it.
    expect(using(/greatest\s*\(/)).toEqual(['parley_moved_watermark']);
    // Whoever counts, counts through the rule: every source that reads unread_count's inputs calls it.
    const callers = using(/parley_is_unread\(/).filter((name) => name !== 'parley_is_unread');
    expect(callers.sort()).toEqual(
      [
        'parley_count_updated_messages',
        'parley_is_unread_mention',
        'parley_send_one',
        'parley_unread_scan',
      ].sort(),
    );
  });
});
