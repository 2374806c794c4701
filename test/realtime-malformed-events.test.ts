import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.ts';
import { inTenant } from '../src/db/tenant-scope.ts';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { actingAs } from './helpers/factories.ts';
import { connectReady, groupOfThree, sendOverHttp } from './helpers/realtime.ts';
import { takeContractViolations } from './helpers/response-contract.ts';

// The log may hold rows the feed cannot route (written by another version of Parley, or by hand). Each
// such event is logged and skipped for live delivery; the feed goes on, and replays still carry it.

const logged: Record<string, unknown>[] = [];
const logLines = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n'))
      if (line.trim() !== '') logged.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
let t: TestApp;
let base = '';

beforeAll(async () => {
  t = await buildTestApp(await createTestDatabase(), { logger: pino({ level: 'warn' }, logLines) });
  base = await listenForSockets(t);
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
});

describe('an event the feed cannot route', () => {
  it('is logged once and skipped; the events after it still reach the sockets', async () => {
    const s = await groupOfThree(t);
    const bob = await connectReady(base, await s.token('bob'));
    const first = await sendOverHttp(t, s, 'alice', 'before the bad rows');
    const firstFrame = await bob.waitFor(
      (frame) => frame.event?.type === 'message.created' && frame.event.data.id === first.id,
    );

    // Rows the contract does not allow: a conversation.created without member_ids, a member.added whose
    // data is JSON null. Either made the feed throw on every read, stopping the tenant's delivery here.
    const bad = await inTenant(t.database.db.orm, s.tenant.id, async (scope) => {
      const result = await scope.tx.execute(sql`
        INSERT INTO events (tenant_id, conversation_id, type, data)
        VALUES (${s.tenant.id}, ${s.conversationId}, 'conversation.created', '{"id": "x"}'::jsonb),
               (${s.tenant.id}, ${s.conversationId}, 'member.added', 'null'::jsonb)
        RETURNING id::bigint AS id`);
      return rowsOf<{ id: string | number }>(result).map((row) => Number(row.id));
    });
    expect(bad).toHaveLength(2);

    try {
      const second = await sendOverHttp(t, s, 'alice', 'after the bad rows');
      await bob.waitFor(
        (frame) => frame.event?.type === 'message.created' && frame.event.data.id === second.id,
        5000,
      );
      // Live delivery skipped them...
      expect(bob.frames.filter((frame) => frame.event?.type === 'member.added')).toEqual([]);
      // ...each logged once, with tenant, id and type, and no message text.
      const skips = logged.filter((line) => typeof line.eventId === 'number' && bad.includes(line.eventId));
      expect(skips.map((line) => [line.eventId, line.eventType, line.tenantId])).toEqual([
        [bad[0], 'conversation.created', s.tenant.id],
        [bad[1], 'member.added', s.tenant.id],
      ]);
      expect(JSON.stringify(logged)).not.toContain('bad rows');

      // A replay still carries them as logged.
      const synced = await t.app.inject({
        method: 'GET',
        url: `/v1/sync?since=${String(firstFrame.event?.cursor)}`,
        headers: actingAs(s.tenant, 'bob'),
      });
      expect(synced.statusCode, synced.body).toBe(200);
      const types = synced.json<{ events: { type: string }[] }>().events.map((event) => event.type);
      expect(types).toEqual(expect.arrayContaining(['conversation.created', 'member.added']));
      // Rows off the event contract are off the OpenAPI document too, as sent.
      expect(
        takeContractViolations(t.app, (violation) => violation.operation === 'GET /v1/sync'),
      ).toHaveLength(1);
    } finally {
      // Gone before the file's database is dropped, whose check of the contract would refuse them.
      await inTenant(t.database.db.orm, s.tenant.id, (scope) =>
        scope.tx.execute(
          sql`DELETE FROM events WHERE tenant_id = ${s.tenant.id} AND id IN (${sql.join(bad, sql`, `)})`,
        ),
      );
      await bob.close();
    }
  });
});
