import { describe, expect, it } from 'vitest';
import type { TenantDb } from '../src/db/tenant-scope.ts';
import {
  sendMessageRows,
  type SendOutcome,
  type SendValues,
} from '../src/modules/messages/message-sends.repository.ts';
import type { StoredMessage } from '../src/modules/messages/messages.repository.ts';
import { SendBatcher } from '../src/modules/messages/send-batcher.ts';
import { createFileLinker, fileLinkKey } from '../src/modules/attachments/file-linker.ts';
import { sendValuesOf } from '../src/modules/messages/messages.service.ts';

/** Links of attachments as the send's event shows them (these sends have none). */
const TEST_LINKS = createFileLinker(fileLinkKey('test'), 3600);

/** The tenant of a send, as the batcher groups sends (in the server, a `TenantDb`). */
const tenant = (tenantId: string) => ({ tenantId });

/** A send whose text names it, so a test can tell which outcome went to which caller. */
const values = (text: string, clientMsgId?: string): SendValues =>
  sendValuesOf(
    '',
    'alice',
    '00000000-0000-7000-8000-000000000001',
    clientMsgId === undefined ? { text } : { text, client_msg_id: clientMsgId },
    [],
    TEST_LINKS,
  );

/** The stored message of a send, as far as these tests read it: its id and its text. */
const messageOf = (send: SendValues) => ({ id: send.id, text: send.text }) as unknown as StoredMessage;

/**
 * A database stand-in whose calls finish only when the test releases them, recording what each carried.
 * Like the real one, it keeps what it stored: a send whose id is stored is a duplicate key (the whole call
 * fails), unless it has a client_msg_id, which finds the stored message (created: false).
 */
function heldDatabase() {
  const stored = new Map<string, SendValues>();
  const calls: {
    tenantId: string;
    texts: string[];
    release: () => void;
    fail: (error: Error) => void;
    /** Commits the call's sends without answering it (its answer is lost, or comes later). */
    land: () => void;
  }[] = [];
  const lookups: string[][] = [];
  const run = ({ tenantId }: { tenantId: string }, sends: SendValues[]) =>
    new Promise<(SendOutcome | Error)[]>((resolve, reject) => {
      const land = () => {
        for (const send of sends) stored.set(send.id, send);
      };
      calls.push({
        tenantId,
        texts: sends.map((send) => send.text),
        release: () => {
          // A send whose text is "poison" fails the whole call, as a failing statement fails its transaction.
          if (sends.some((send) => send.text === 'poison')) reject(new Error('poisoned batch'));
          else if (sends.some((send) => stored.has(send.id) && send.clientMsgId === null)) {
            reject(new Error('duplicate key value violates unique constraint "messages_id_idx"'));
          } else {
            const outcomes = sends.map((send) =>
              stored.has(send.id)
                ? { created: false, message: messageOf(send) }
                : { created: true, message: messageOf(send) },
            );
            land();
            resolve(outcomes);
          }
        },
        fail: reject,
        land,
      });
    });
  const findStored = (_tenant: { tenantId: string }, sends: SendValues[]) => {
    lookups.push(sends.map((send) => send.text));
    return Promise.resolve(sends.filter((send) => stored.has(send.id)).map(messageOf));
  };
  return { calls, run, findStored, lookups, stored };
}

const textOf = (outcome: SendOutcome) => (typeof outcome === 'string' ? outcome : outcome.message.text);
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SendBatcher', () => {
  it('sends at once while a call is free, and the sends that wait meanwhile as one call', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const first = batcher.send(tenant('t1'), values('a'));
    const waiting = ['b', 'c', 'd'].map((text) => batcher.send(tenant('t1'), values(text)));
    await settle();
    expect(db.calls.map((call) => call.texts)).toEqual([['a']]);

    db.calls[0]?.release();
    expect(textOf(await first)).toBe('a');
    await settle();
    expect(db.calls.map((call) => call.texts)).toEqual([['a'], ['b', 'c', 'd']]);
    db.calls[1]?.release();
    expect((await Promise.all(waiting)).map(textOf)).toEqual(['b', 'c', 'd']);
  });

  it('runs at most maxInFlight calls, of at most maxBatch sends each', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 2, 3);
    const sent = 'abcdefghij'.split('').map((text) => batcher.send(tenant('t1'), values(text)));
    await settle();
    expect(db.calls.map((call) => call.texts)).toEqual([['a'], ['b']]);
    db.calls[0]?.release();
    await settle();
    expect(db.calls.map((call) => call.texts)).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    db.calls[1]?.release();
    await settle();
    expect(db.calls.map((call) => call.texts)).toEqual([['a'], ['b'], ['c', 'd', 'e'], ['f', 'g', 'h']]);
    db.calls[2]?.release();
    db.calls[3]?.release();
    await settle();
    db.calls[4]?.release();
    expect((await Promise.all(sent)).map(textOf)).toEqual('abcdefghij'.split(''));
    expect(db.calls.map((call) => call.texts.length)).toEqual([1, 1, 3, 3, 2]);
  });

  it("never puts two tenants' sends in one call, and keeps the oldest waiting send first", async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const sent = [
      batcher.send(tenant('t1'), values('a')),
      batcher.send(tenant('t2'), values('x')),
      batcher.send(tenant('t1'), values('b')),
      batcher.send(tenant('t2'), values('y')),
      batcher.send(tenant('t1'), values('c')),
    ];
    for (let index = 0; index < 3; index++) {
      await settle();
      db.calls[index]?.release();
    }
    expect((await Promise.all(sent)).map(textOf)).toEqual(['a', 'x', 'b', 'y', 'c']);
    expect(db.calls.map((call) => [call.tenantId, ...call.texts])).toEqual([
      ['t1', 'a'],
      ['t2', 'x', 'y'],
      ['t1', 'b', 'c'],
    ]);
  });

  it('retries the sends of a failed call one by one, so the error reaches only the send that causes it', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const first = batcher.send(tenant('t1'), values('a'));
    const batch = [
      batcher.send(tenant('t1'), values('b')),
      batcher.send(tenant('t1'), values('poison')),
      batcher.send(tenant('t1'), values('c')),
    ];
    await settle();
    db.calls[0]?.release();
    await first;
    await settle();
    db.calls[1]?.release(); // the batch of three fails as a whole
    await settle();
    expect(db.calls.slice(2).map((call) => call.texts)).toEqual([['b'], ['poison'], ['c']]);
    for (const call of db.calls.slice(2)) call.release();
    const results = await Promise.allSettled(batch);
    expect(
      results.map((result) => (result.status === 'fulfilled' ? textOf(result.value) : 'rejected')),
    ).toEqual(['b', 'rejected', 'c']);
    const rejected = results[1];
    expect(rejected?.status === 'rejected' && String(rejected.reason)).toContain('poisoned batch');
  });

  it('rejects a send of one that fails, and keeps serving the sends after it', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const failing = batcher.send(tenant('t1'), values('a'));
    const after = batcher.send(tenant('t1'), values('b'));
    await settle();
    db.calls[0]?.fail(new Error('connection lost'));
    await expect(failing).rejects.toThrow('connection lost');
    await settle();
    db.calls[1]?.release();
    expect(textOf(await after)).toBe('b');
    expect(db.calls).toHaveLength(2);
  });

  it('answers the sends of a call that failed after its commit with their stored messages, sending none again', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const sends = [values('a'), values('b'), values('c', 'c-1'), values('d')];
    const first = batcher.send(tenant('t1'), sends[0] as SendValues);
    const batch = sends.slice(1).map((send) => batcher.send(tenant('t1'), send));
    await settle();
    // The connection is lost once COMMIT was sent: the send of one and the batch are stored, their answers lost.
    db.calls[0]?.land();
    db.calls[0]?.fail(new Error('connection lost after COMMIT'));
    await settle();
    db.calls[1]?.land();
    db.calls[1]?.fail(new Error('connection lost after COMMIT'));
    const outcomes = await Promise.all([first, ...batch]);
    expect(outcomes).toEqual(sends.map((send) => ({ created: true, message: messageOf(send) })));
    expect(db.calls.map((call) => call.texts)).toEqual([['a'], ['b', 'c', 'd']]);
    expect(db.lookups).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('answers a retried send whose batch commit landed after the look-up as created, not as an error', async () => {
    const db = heldDatabase();
    const batcher = new SendBatcher(db.run, db.findStored, 1, 64);
    const first = batcher.send(tenant('t1'), values('a'));
    const sends = [values('b'), values('c', 'c-1'), values('d')];
    const batch = sends.map((send) => batcher.send(tenant('t1'), send));
    await settle();
    db.calls[0]?.release();
    await first;
    await settle();
    db.calls[1]?.fail(new Error('connection lost')); // its COMMIT was sent and has not landed yet
    await settle();
    expect(db.calls.slice(2).map((call) => call.texts)).toEqual([['b'], ['c'], ['d']]);
    db.calls[1]?.land(); // now it has: b and d fail on their own id, c's client_msg_id finds itself
    for (const call of db.calls.slice(2)) call.release();
    const outcomes = await Promise.all(batch);
    expect(outcomes).toEqual(sends.map((send) => ({ created: true, message: messageOf(send) })));
    expect(db.lookups).toEqual([['b', 'c', 'd'], ['b'], ['d']]);
  });

  it("makes a result it cannot read that one send's error, and answers the others", async () => {
    const sends = [values('a'), values('unknown refusal'), values('unreadable but stored'), values('d')];
    const stored = new Set([sends[2]?.id]);
    const run = (_tenant: { tenantId: string }, batch: SendValues[]) =>
      Promise.resolve(
        batch.map((send): SendOutcome | Error =>
          send.text === 'unknown refusal'
            ? new Error('unknown send refusal of_a_newer_version')
            : send.text === 'unreadable but stored'
              ? new Error('a row that does not map')
              : { created: true, message: messageOf(send) },
        ),
      );
    const findStored = (_tenant: { tenantId: string }, batch: SendValues[]) =>
      Promise.resolve(batch.filter((send) => stored.has(send.id)).map(messageOf));
    const batcher = new SendBatcher(run, findStored, 1, 64);
    // The first goes alone; the other three wait for it and go as one call.
    const results = await Promise.allSettled(sends.map((send) => batcher.send(tenant('t1'), send)));
    expect(
      results.map((result) => (result.status === 'fulfilled' ? textOf(result.value) : String(result.reason))),
    ).toEqual(['a', 'Error: unknown send refusal of_a_newer_version', 'unreadable but stored', 'd']);
  });

  it("keeps the call's error when the look-up after it fails too", async () => {
    const run = () => Promise.reject(new Error('database down'));
    const findStored = () => Promise.reject(new Error('still down'));
    const batcher = new SendBatcher(run, findStored, 1, 64);
    await expect(batcher.send(tenant('t1'), values('a'))).rejects.toThrow('database down');
  });
});

describe('sendMessageRows', () => {
  it("reads a result it does not understand as that one send's error, not the call's", async () => {
    // The answer of a newer parley_send_messages: a refusal this code does not know, and a row it cannot map.
    const results = [
      { refused: 'slow_mode' },
      { refused: 'conversation_archived' },
      { created: true, message: null },
      { refused: 'role_may_not_send' },
    ];
    const answering = {
      tenantId: 't1',
      db: { execute: () => Promise.resolve({ rows: [{ results }] }) },
    } as unknown as TenantDb;
    const outcomes = await sendMessageRows(
      answering,
      ['a', 'b', 'c', 'd'].map((text) => values(text)),
      ['MEMBER'],
    );
    expect(outcomes.map((outcome) => (outcome instanceof Error ? 'error' : outcome))).toEqual([
      'error',
      'conversation_archived',
      'error',
      'role_may_not_send',
    ]);
    const [unknown] = outcomes;
    expect(unknown instanceof Error ? unknown.message : unknown).toContain('unknown send refusal slow_mode');
  });
});
