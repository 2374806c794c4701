import { sql } from 'drizzle-orm';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { APP_ROLE } from '../src/db/client.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { findEventsOffContract, type LoggedRow } from './helpers/event-contract.ts';
import { asUser, createTenantWithUsers, sendText } from './helpers/factories.ts';
import { takeContractViolations } from './helpers/response-contract.ts';

const CONVERSATION = '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83';
const row = (type: string, data: unknown, seq: number | null = null): LoggedRow => ({
  id: 1,
  type,
  conversation_id: CONVERSATION,
  seq,
  data,
  created_at: '2026-11-22T10:00:00.000Z',
});

describe('the event contract check', () => {
  it('passes events that match their schema', () => {
    expect(
      findEventsOffContract([
        row('read.updated', { user_id: 'ann', last_read_seq: 3 }),
        row('reaction.added', { message_id: CONVERSATION, emoji: '👍', user_id: 'ann' }, 4),
        row('member.removed', { user_id: 'ann' }),
      ]),
    ).toEqual([]);
  });

  it('reports a payload that loses a field, grows one or changes a type, an unknown type and a misplaced seq', () => {
    const offenders = findEventsOffContract([
      row('read.updated', { user_id: 'ann' }),
      row('read.updated', { user_id: 'ann', last_read_seq: 3, extra: true }),
      row('member.added', { user_id: 'ann', role: 'KING' }),
      row('message.exploded', {}),
      row('reaction.added', { message_id: CONVERSATION, emoji: '👍', user_id: 'ann' }),
      row('member.removed', { user_id: 'ann' }, 4),
    ]);
    expect(offenders).toHaveLength(6);
    expect(offenders[0]).toContain("must have required property 'last_read_seq'");
    expect(offenders[1]).toContain('must NOT have additional properties');
    expect(offenders[3]).toContain('unknown type message.exploded');
  });

  /** Runs a statement as the database's owner, whom row-level security does not restrict. */
  async function asOwner(database: TestDatabase, statement: string): Promise<void> {
    if (database.url === undefined) {
      // The embedded database's one session: step out of the app role for the statement, then back.
      await database.db.orm.execute(sql`RESET ROLE`);
      await database.db.orm.execute(sql.raw(statement));
      await database.db.orm.execute(sql.raw(`SET ROLE ${APP_ROLE}`));
      return;
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }

  /** A tenant with ann and ben, and the group ann made for them. */
  async function annAndBenInAGroup(t: TestApp) {
    const tenant = await createTenantWithUsers(t, 'ann', 'ben');
    const created = await asUser(t, tenant, 'ann').post('/v1/conversations', {
      type: 'group',
      members: ['ben'],
    });
    return { tenant, conversationId: created.json<{ id: string }>().id };
  }

  it('fails the dropping of a test database holding an event off the contract, written by SQL or not', async () => {
    const database = await createTestDatabase();
    const t = await buildTestApp(database);
    try {
      const { tenant, conversationId } = await annAndBenInAGroup(t);
      // parley_send_one writes message.created and read.updated; one of its payloads drifts.
      await sendText(t, tenant, 'ann', conversationId, 'hello');
      await asOwner(database, `UPDATE events SET data = data - 'sender_id' WHERE type = 'message.created'`);
    } finally {
      await t.app.close();
    }
    await expect(database.drop()).rejects.toThrow(
      /1 of 3 events in .* break the event contract[^]*message\.created\): event\/data must have required property 'sender_id'/,
    );
  });

  it('GET /v1/sync passes on an event this process does not know, as the socket does, instead of failing', async () => {
    const database = await createTestDatabase();
    const t = await buildTestApp(database);
    try {
      const { tenant, conversationId } = await annAndBenInAGroup(t);
      const start = (await asUser(t, tenant, 'ben').get('/v1/sync')).json<{ next_cursor: string }>();
      await sendText(t, tenant, 'ann', conversationId, 'before');
      // What a newer process might write during a rolling deploy: a type this code's contract lacks.
      await asOwner(
        database,
        `INSERT INTO events (tenant_id, conversation_id, type, data)
         VALUES ('${tenant.id}', '${conversationId}', 'poll.created', '{"question": "lunch?"}')`,
      );
      await sendText(t, tenant, 'ann', conversationId, 'after');
      const page = await asUser(t, tenant, 'ben').get(`/v1/sync?since=${start.next_cursor}`);
      expect(page.statusCode, page.body).toBe(200);
      const types = page.json<{ events: { type: string }[] }>().events.map((event) => event.type);
      expect(types).toEqual(['message.created', 'poll.created', 'message.created']);
      // A type the OpenAPI document does not list either: the one response off it, on purpose.
      expect(
        takeContractViolations(t.app, (violation) => violation.operation === 'GET /v1/sync'),
      ).toHaveLength(1);
      // The row is off the contract on purpose; the drop below checks the rest.
      await asOwner(database, `DELETE FROM events WHERE type = 'poll.created'`);
    } finally {
      await t.app.close();
    }
    await database.drop();
  });
});
