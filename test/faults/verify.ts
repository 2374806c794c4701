import type { FaultRecord } from './faults.ts';
import type { Ledger } from './http.ts';
import type { Reader } from './readers.ts';
import type { SendRecord } from './senders.ts';
import type { StoredMessage } from './setup.ts';

/** A live socket that has not received a message this long after its acknowledgement is stalled. */
export const STALL_MS = 10_000;

/** The figures of a run, as the suite prints them. */
export interface FaultFigures {
  attempted: number;
  acknowledged: number;
  acknowledgedOverSocket: number;
  stored: number;
  /** Acknowledged sends not stored exactly once as the acknowledged message. */
  lost: number;
  /** client_msg_ids stored more than once (any sender, any conversation). */
  duplicated: number;
  /** Missing or repeated seq numbers, over all conversations. */
  seqGaps: number;
  /** Reader × conversation streams of message.created that differ from the conversation's history. */
  readerGaps: number;
  readerStreams: number;
  /** Sockets that stayed open, outside fault windows, without receiving an acknowledged message (STALL_MS). */
  stalledSockets: number;
  unacknowledgedStored: number;
  unacknowledgedNotStored: number;
  retries: number;
  serverErrorsOutside: { total: number; status500: number; status503: number; other: number };
  serverErrorsInside: { total: number; status500: number; status503: number; other: number };
  rateLimited: number;
  networkErrors: number;
  timeouts: number;
  refusals: number;
  readerSessions: number;
  syncFills: number;
}

export interface FaultVerdict {
  figures: FaultFigures;
  /** Why the run fails: empty when it passes. */
  failures: string[];
  /** Details worth printing with a failure (the first few of each kind). */
  details: string[];
}

const overlaps = (from: number, to: number, windows: { from: number; to: number }[]) =>
  windows.some((window) => from <= window.to && to >= window.from);

function countErrors(errors: Ledger['serverErrors']) {
  return {
    total: errors.length,
    status500: errors.filter((error) => error.status === 500).length,
    status503: errors.filter((error) => error.status === 503).length,
    other: errors.filter((error) => error.status !== 500 && error.status !== 503).length,
  };
}

/** Compares what was sent, stored and received; decides whether the run passes. */
export function verifyRun(input: {
  records: SendRecord[];
  histories: Map<string, StoredMessage[]>;
  readers: { reader: Reader; conversationIds: string[] }[];
  faults: FaultRecord[];
  ledger: Ledger;
  startedAt: number;
  endedAt: number;
  findings: string[];
}): FaultVerdict {
  const { records, histories, readers, faults, ledger } = input;
  const failures: string[] = [];
  const details: string[] = [...input.findings];
  const byClientId = new Map<string, StoredMessage[]>();
  let seqGaps = 0;
  for (const [conversationId, history] of histories) {
    for (const message of history) {
      if (message.clientMsgId === null) continue;
      const key = `${message.senderId}|${message.clientMsgId}`;
      byClientId.set(key, [...(byClientId.get(key) ?? []), message]);
    }
    const seqs = history.map((message) => message.seq);
    const gapsHere = seqs.filter((seq, index) => seq !== index + 1).length;
    if (gapsHere > 0)
      details.push(`conversation ${conversationId}: seqs ${JSON.stringify(seqs.slice(0, 50))}…`);
    seqGaps += gapsHere;
  }
  let lost = 0;
  let stored = 0;
  let unacknowledgedStored = 0;
  for (const record of records) {
    const copies = byClientId.get(`${record.senderId}|${record.clientMsgId}`) ?? [];
    if (copies.length > 0) stored++;
    if (record.ack === null) {
      if (copies.length > 0) unacknowledgedStored++;
      continue;
    }
    if (copies.length !== 1 || copies[0]?.id !== record.ack.id) {
      lost++;
      if (lost <= 5) {
        details.push(
          `lost: ${record.clientMsgId} (${record.via}) acknowledged as ${record.ack.id}, stored ${JSON.stringify(copies)}`,
        );
      }
    }
  }
  const duplicates = [...byClientId.entries()].filter(([, copies]) => copies.length > 1);
  for (const [key, copies] of duplicates.slice(0, 5))
    details.push(`duplicated: ${key} stored ${copies.length} times`);

  let readerGaps = 0;
  let readerStreams = 0;
  for (const { reader, conversationIds } of readers) {
    for (const conversationId of conversationIds) {
      readerStreams++;
      const expected = (histories.get(conversationId) ?? []).map((message) => message.id);
      const got = reader.streams.get(conversationId) ?? [];
      if (expected.length === got.length && expected.every((id, index) => got[index] === id)) continue;
      readerGaps++;
      const gotSet = new Set(got);
      const missing = expected.filter((id) => !gotSet.has(id)).length;
      const extra = got.length - (expected.length - missing);
      details.push(
        `reader gap: ${reader.userId} in ${conversationId}: history ${expected.length}, received ${got.length}, ` +
          `missing ${missing}, extra or repeated ${extra}${missing === 0 && extra === 0 ? ', out of order' : ''}`,
      );
      const history = histories.get(conversationId) ?? [];
      const missed = history.filter((message) => !gotSet.has(message.id)).slice(0, 5);
      for (const message of missed) {
        const record = records.find((each) => each.ack?.id === message.id);
        const at = record?.ack ? record.ack.at - input.startedAt : null;
        const around = reader.sessions
          .filter(
            (session) => at !== null && (session.endedAt ?? input.endedAt) - input.startedAt >= at - 3_000,
          )
          .slice(0, 3)
          .map(
            (session) =>
              `server ${session.server}${session.resumed ? ' resumed' : ''} ready +${session.readyAt === null ? '-' : session.readyAt - input.startedAt}` +
              ` ended +${(session.endedAt ?? input.endedAt) - input.startedAt} (${session.closeCode ?? 'dropped'})`,
          );
        details.push(
          `  missed seq ${message.seq} (acknowledged at +${at ?? '?'} ms); sockets: ${around.join('; ')}`,
        );
      }
    }
  }

  const windows = faults.map((fault) => ({ from: fault.startedAt, to: fault.recoveredAt ?? input.endedAt }));
  let stalledSockets = 0;
  for (const { reader, conversationIds } of readers) {
    const watched = new Set(conversationIds);
    for (const session of reader.sessions) {
      const readyAt = session.readyAt;
      if (readyAt === null) continue;
      const end = session.endedAt ?? input.endedAt;
      const stalledOn = records.find(
        (record) =>
          record.ack !== null &&
          watched.has(record.conversationId) &&
          record.ack.at >= readyAt &&
          record.ack.at + STALL_MS <= end &&
          !overlaps(record.ack.at, record.ack.at + STALL_MS, windows) &&
          (reader.firstSeen.get(record.ack.id) ?? Infinity) > record.ack.at + STALL_MS,
      );
      if (stalledOn === undefined) continue;
      stalledSockets++;
      details.push(
        `stalled socket: ${reader.userId} on server ${session.server} (ready at +${readyAt - input.startedAt} ms, ` +
          `open until +${end - input.startedAt} ms) ` +
          `did not receive ${stalledOn.ack?.id} within ${STALL_MS} ms of its acknowledgement`,
      );
    }
  }

  const outside = ledger.serverErrors.filter((error) => !overlaps(error.from, error.to, windows));
  const inside = ledger.serverErrors.filter((error) => overlaps(error.from, error.to, windows));
  for (const error of outside.slice(0, 5))
    details.push(`5xx outside fault windows: ${JSON.stringify(error)}`);
  for (const refusal of ledger.refusals.slice(0, 5)) details.push(`refused: ${JSON.stringify(refusal)}`);

  const acknowledged = records.filter((record) => record.ack !== null);
  const figures: FaultFigures = {
    attempted: records.length,
    acknowledged: acknowledged.length,
    acknowledgedOverSocket: acknowledged.filter((record) => record.via === 'socket').length,
    stored,
    lost,
    duplicated: duplicates.length,
    seqGaps,
    readerGaps,
    readerStreams,
    stalledSockets,
    unacknowledgedStored,
    unacknowledgedNotStored: records.length - acknowledged.length - unacknowledgedStored,
    retries: records.reduce((sum, record) => sum + Math.max(0, record.attempts - 1), 0),
    serverErrorsOutside: countErrors(outside),
    serverErrorsInside: countErrors(inside),
    rateLimited: ledger.rateLimited,
    networkErrors: ledger.networkErrors,
    timeouts: ledger.timeouts,
    refusals: ledger.refusals.length,
    readerSessions: readers.reduce((sum, { reader }) => sum + reader.sessions.length, 0),
    syncFills: readers.reduce((sum, { reader }) => sum + reader.syncFills, 0),
  };
  if (lost > 0) failures.push(`${lost} acknowledged sends lost`);
  if (duplicates.length > 0) failures.push(`${duplicates.length} client_msg_ids stored more than once`);
  if (seqGaps > 0) failures.push(`${seqGaps} seq gaps`);
  if (readerGaps > 0) failures.push(`${readerGaps} reader streams differ from the history`);
  if (stalledSockets > 0) failures.push(`${stalledSockets} sockets stopped receiving`);
  if (ledger.refusals.length > 0)
    failures.push(`${ledger.refusals.length} valid requests refused with a 4xx`);
  for (const fault of faults)
    if (fault.recoveredAt === null) failures.push(`did not recover from: ${fault.label}`);
  if (input.findings.length > 0) failures.push(`${input.findings.length} protocol findings`);
  return { figures, failures, details };
}
