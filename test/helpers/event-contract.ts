import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LoggedEvent } from '../../src/modules/events/events.schemas.ts';

// Every event a test writes, whether by a service (typed at compile time) or by a SQL function (the send
// functions write message.created and read.updated), is checked against the event contract when the test's
// database is dropped (test/helpers/database.ts). Validation lives here, not on the delivery path.

/** One row of the events table, as the check reads it. */
export interface LoggedRow {
  id: string | number;
  type: string;
  conversation_id: string;
  seq: string | number | null;
  data: unknown;
  created_at: Date | string;
}

/** The query that reads every event of a database for the check, whatever its tenant. */
export const EVENT_ROWS_QUERY =
  'SELECT id::bigint AS id, type, conversation_id, seq::bigint AS seq, data, created_at FROM events ORDER BY id';

type JsonSchema = Record<string, unknown>;

/**
 * The schema with every object closed (no property it does not name) unless it says otherwise, so a
 * payload that grows a field fails as surely as one that loses one. The contract itself stays open, so an
 * old event in a deployment's log never breaks serialization.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: JsonSchema = Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [key, closed(value)]),
  );
  if (copy.type === 'object' && copy.properties !== undefined && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);

/** A validator of the whole envelope per logged event type, from the contract's union. */
const envelopeOf = new Map<string, ValidateFunction>(
  LoggedEvent.anyOf.map((envelope) => [
    envelope.properties.type.const,
    ajv.compile(closed(envelope) as JsonSchema),
  ]),
);

/**
 * The events that break the contract, each as a line naming it and what is wrong; empty when all hold. The
 * envelope is built as the reader builds it (sync.service.ts `toEventFrame`), so `seq` is checked too.
 */
export function findEventsOffContract(rows: LoggedRow[]): string[] {
  return rows.flatMap((row) => {
    const validate = envelopeOf.get(row.type);
    if (validate === undefined) return [`event ${row.id}: unknown type ${row.type}`];
    const envelope = {
      type: row.type,
      conversation_id: row.conversation_id,
      ...(row.seq === null ? {} : { seq: Number(row.seq) }),
      cursor: 'cursor',
      data: row.data,
      ts: new Date(row.created_at).toISOString(),
    };
    if (validate(envelope)) return [];
    return [
      `event ${row.id} (${row.type}): ${ajv.errorsText(validate.errors, { dataVar: 'event' })}; data ${JSON.stringify(row.data)}`,
    ];
  });
}

/** Throws, listing the offenders, unless every event of a database holds to the contract. */
export function assertEventsOnContract(rows: LoggedRow[], where: string): void {
  const offenders = findEventsOffContract(rows);
  if (offenders.length === 0) return;
  throw new Error(
    `${offenders.length} of ${rows.length} events in ${where} break the event contract ` +
      `(src/modules/events/events.schemas.ts):\n${offenders.slice(0, 20).join('\n')}`,
  );
}
