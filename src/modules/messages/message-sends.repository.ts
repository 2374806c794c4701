import { sql } from 'drizzle-orm';
import { rowsOf } from '../../db/client.ts';
import { arrayParam } from '../../db/params.ts';
import type { TenantDb, TenantScope } from '../../db/tenant-scope.ts';
import { isVisible, type ConversationType } from '../access/permissions.ts';
import type { MessageEventData } from '../events/events.schemas.ts';
import { findMessagesByIds, messageFromJson, type StoredMessage } from './messages.repository.ts';

// The send path's one statement: many sends of a tenant in one call of parley_send_messages
// (src/db/functions/parley_send_messages.sql and parley_send_one.sql), and what each came to.

/** One send for `sendMessageRows`; the database adds seq, created_at and the thread root of a reply. */
export interface SendValues {
  senderId: string;
  conversationId: string;
  id: string;
  text: string;
  mentions: string[];
  /** The message replied to (a reply to a reply joins its thread); null for the main timeline. */
  threadTargetId: string | null;
  metadata: Record<string, unknown>;
  clientMsgId: string | null;
  /** The message.created event's data; seq, created_at and thread_root_id are filled in by the database. */
  eventData: MessageEventData;
}

/** Why a send was refused (see src/db/functions/parley_send_one.sql); a refused send wrote nothing. */
const SEND_REFUSALS = [
  'conversation_not_found',
  'role_may_not_send',
  'conversation_archived',
  'thread_target_elsewhere',
  'thread_root_deleted',
] as const;
export type SendRefusal = (typeof SEND_REFUSALS)[number];
const isSendRefusal = (value: string): value is SendRefusal =>
  (SEND_REFUSALS as readonly string[]).includes(value);

/**
 * What a send came to: the new message (`created: true`), the sender's earlier message with the same
 * client_msg_id (`created: false`; it may belong to another conversation), or a refusal.
 */
export type SendOutcome = { created: boolean; message: StoredMessage } | SendRefusal;

type SendResultJson =
  | { created: boolean; message: Record<string, unknown> }
  | { refused: string; conversation_type?: ConversationType };

/**
 * What one result of parley_send_messages came to. A result this code cannot read (a refusal a newer function
 * added, a row that does not map) is that send's own error, returned in its place: thrown, it would fail
 * every send of the batch, whose other sends are committed.
 */
function sendOutcomeOf(result: SendResultJson): SendOutcome | Error {
  try {
    if ('refused' in result) {
      // A sender who is no member: whether the conversation is one they may see decides between 403 and 404.
      if (result.refused === 'not_a_member' && result.conversation_type !== undefined) {
        return isVisible(result.conversation_type, null) ? 'role_may_not_send' : 'conversation_not_found';
      }
      if (!isSendRefusal(result.refused)) return new Error(`unknown send refusal ${result.refused}`);
      return result.refused;
    }
    return { created: result.created, message: messageFromJson(result.message) };
  } catch (error) {
    return error instanceof Error ? error : new Error(`unreadable send result: ${String(error)}`);
  }
}

/**
 * Sends messages of one tenant in one statement (the parley_send_messages function), and
 * returns their outcomes in the order given. For each send it checks visibility, role, archive and thread,
 * allocates the seq under the conversation's row lock, inserts the message, counts the reply, moves the
 * sender's read watermark and records message.created and read.updated. It sets the tenant itself, so it
 * runs on its own (a `TenantDb`: one round trip, committing every send at once) or inside an `inTenant`
 * transaction (its `TenantScope`). Refusals are outcomes, not errors: one refused send does not undo the others;
 * nor does a result this code cannot read, which is an `Error` in that send's place.
 */
export async function sendMessageRows(
  tenant: TenantDb,
  sends: readonly SendValues[],
  sendRoles: readonly string[],
): Promise<(SendOutcome | Error)[]> {
  const body = sends.map((send) => ({
    sender: send.senderId,
    conversation: send.conversationId,
    id: send.id,
    text: send.text,
    mentions: send.mentions,
    thread_target: send.threadTargetId,
    metadata: send.metadata,
    client_msg_id: send.clientMsgId,
    event_data: send.eventData,
  }));
  const result = await tenant.db.execute(
    sql`SELECT parley_send_messages(${tenant.tenantId}::uuid, ${JSON.stringify(body)}::jsonb, ${arrayParam(sendRoles, 'text')}) AS results`,
  );
  const [row] = rowsOf<{ results: SendResultJson[] }>(result);
  if (!row || row.results.length !== sends.length) {
    throw new Error('parley_send_messages did not return one result per send');
  }
  return row.results.map(sendOutcomeOf);
}

/**
 * The messages of `sends` that are stored, each matched by id, sender and conversation: for `SendBatcher`
 * after a call failed, which may have committed before its error (a connection lost once COMMIT was sent).
 * One read by (tenant_id, id), on that path only.
 */
export async function findStoredSends(
  scope: TenantScope,
  sends: readonly SendValues[],
): Promise<StoredMessage[]> {
  const stored = await findMessagesByIds(
    scope,
    sends.map((send) => send.id),
  );
  return stored.filter((message) =>
    sends.some(
      (send) =>
        send.id === message.id &&
        send.senderId === message.senderId &&
        send.conversationId === message.conversationId,
    ),
  );
}
