import { and, asc, desc, eq, gt, isNotNull, sql, type SQL } from 'drizzle-orm';
import { messageEdits, messageReactions, messages } from '../../db/schema/messages.ts';
import { rowsOf } from '../../db/client.ts';
import { rowFromJson } from '../../db/json-rows.ts';
import { arrayParam, isAnyOf } from '../../db/params.ts';
import type { TenantDb, TenantScope } from '../../db/tenant-scope.ts';
import { isVisible, type ConversationType, type Role } from '../access/permissions.ts';
import {
  reactionsFromJson,
  type ReactionsByMessage,
  type ReactionSummaryJson,
} from '../reactions/reactions.repository.ts';

export type MessageRow = typeof messages.$inferSelect;
export type EditRow = typeof messageEdits.$inferSelect;

/** Every column but the search vector, which no reader needs. */
const messageColumns = {
  tenantId: messages.tenantId,
  conversationId: messages.conversationId,
  seq: messages.seq,
  id: messages.id,
  senderId: messages.senderId,
  text: messages.text,
  mentions: messages.mentions,
  threadRootId: messages.threadRootId,
  replyCount: messages.replyCount,
  lastReplyAt: messages.lastReplyAt,
  metadata: messages.metadata,
  attachments: messages.attachments,
  clientMsgId: messages.clientMsgId,
  pinnedAt: messages.pinnedAt,
  pinnedBy: messages.pinnedBy,
  createdAt: messages.createdAt,
  editedAt: messages.editedAt,
  deletedAt: messages.deletedAt,
};
export type StoredMessage = Omit<MessageRow, 'searchVector'>;

const byId = (scope: TenantScope, messageId: string) =>
  and(eq(messages.tenantId, scope.tenantId), eq(messages.id, messageId));
const inConversation = (scope: TenantScope, conversationId: string) =>
  and(eq(messages.tenantId, scope.tenantId), eq(messages.conversationId, conversationId));

/** A message by id; `forUpdate` locks it against concurrent edits. */
export async function findMessage(
  scope: TenantScope,
  messageId: string,
  options: { forUpdate?: boolean } = {},
): Promise<StoredMessage | undefined> {
  const query = scope.tx.select(messageColumns).from(messages).where(byId(scope, messageId));
  const [row] = options.forUpdate ? await query.for('update') : await query;
  return row;
}

/** The sender's message with this client_msg_id, if one was stored (a send being retried). */
export async function findMessageBySender(
  scope: TenantScope,
  senderId: string,
  clientMsgId: string,
): Promise<StoredMessage | undefined> {
  const [row] = await scope.tx
    .select(messageColumns)
    .from(messages)
    .where(
      and(
        eq(messages.tenantId, scope.tenantId),
        eq(messages.senderId, senderId),
        eq(messages.clientMsgId, clientMsgId),
      ),
    );
  return row;
}

/** Messages by id, in no particular order. */
export function findMessagesByIds(scope: TenantScope, messageIds: string[]): Promise<StoredMessage[]> {
  if (messageIds.length === 0) return Promise.resolve([]);
  return scope.tx
    .select(messageColumns)
    .from(messages)
    .where(and(eq(messages.tenantId, scope.tenantId), isAnyOf(messages.id, messageIds, 'uuid')));
}

/** A message row as `to_jsonb(m)` (a send) or `row_to_json` of `message_rows` (the read functions) writes it. */
export const messageFromJson = (json: Record<string, unknown>): StoredMessage => rowFromJson(messages, json);

/** Counts a reply on its thread root (delta 1) or takes a deleted one off (-1). */
export async function adjustReplyCount(scope: TenantScope, rootId: string, delta: 1 | -1): Promise<void> {
  await scope.tx
    .update(messages)
    .set({
      replyCount: sql`greatest(${messages.replyCount} + ${delta}, 0)`,
      ...(delta > 0 ? { lastReplyAt: sql`now()` } : {}),
    })
    .where(byId(scope, rootId));
}

/** Updates a message's stored fields. */
export async function updateMessage(
  scope: TenantScope,
  messageId: string,
  changes: {
    text?: string | null;
    mentions?: string[];
    metadata?: Record<string, unknown>;
    /** A tombstone keeps none. */
    attachments?: [];
    editedAt?: SQL;
    deletedAt?: SQL;
    pinnedAt?: SQL | null;
    pinnedBy?: string | null;
  },
): Promise<StoredMessage> {
  const [row] = await scope.tx
    .update(messages)
    .set(changes)
    .where(byId(scope, messageId))
    .returning(messageColumns);
  if (!row) throw new Error('message vanished under its own lock');
  return row;
}

/** What `readTimelinePage` asks for: the rows before a seq and the rows from a seq, or around a message. */
export interface TimelineWindow {
  /** A message id: both sides are read from its seq (before it, and from it on). */
  around?: string;
  /** Rows before this seq, newest first; the latest rows when undefined. */
  beforeSeq?: number;
  beforeLimit: number;
  /** Rows from this seq on, oldest first. */
  fromSeq?: number;
  fromLimit: number;
}

/** A conversation's main timeline around a point, as `viewerId` may see it (see `readTimelinePage`). */
export type TimelinePage =
  | { visible: false }
  /** The viewer may see the conversation but not read it (a channel they are no member of): no rows. */
  | { visible: true; mayRead: false }
  | { visible: true; mayRead: true; anchorFound: false }
  | {
      visible: true;
      mayRead: true;
      anchorFound: true;
      firstMainSeq: number | null;
      lastMainSeq: number;
      /** Newest first. */
      before: StoredMessage[];
      /** Oldest first. */
      from: StoredMessage[];
      reactions: ReactionsByMessage;
    };

/**
 * A page of the main timeline (thread replies excluded) in one round trip, the parley_timeline_page
 * function, which sets the tenant itself and commits on its own: the conversation's type and the viewer's
 * role, and, when the role is one of `readRoles`, the rows on each side of the window and their reactions.
 * Not visible: deleted, or not one the viewer may see (`isVisible`). A viewer who may see it but whose role
 * (or none) may not read it gets no rows; an `around` that is not a main-timeline message of the
 * conversation gets `anchorFound: false`.
 */
export async function readTimelinePage(
  tenant: TenantDb,
  viewerId: string,
  conversationId: string,
  window: TimelineWindow,
  readRoles: readonly Role[],
): Promise<TimelinePage> {
  const result = await tenant.db.execute(sql`SELECT parley_timeline_page(
    ${tenant.tenantId}::uuid, ${viewerId}::text, ${conversationId}::uuid, ${window.around ?? null}::uuid,
    ${window.beforeSeq ?? null}::bigint, ${window.beforeLimit}::integer,
    ${window.fromSeq ?? null}::bigint, ${window.fromLimit}::integer, ${arrayParam(readRoles, 'text')}
  ) AS page`);
  const [row] = rowsOf<{ page: TimelinePageJson }>(result);
  if (!row) throw new Error('parley_timeline_page returned no row');
  const { conversation, anchor_found: anchorFound } = row.page;
  if (conversation === null || !isVisible(conversation.type, conversation.role)) return { visible: false };
  if (conversation.role === null || !readRoles.includes(conversation.role)) {
    return { visible: true, mayRead: false };
  }
  if (!anchorFound) return { visible: true, mayRead: true, anchorFound: false };
  return {
    visible: true,
    mayRead: true,
    anchorFound: true,
    firstMainSeq: conversation.first_main_seq === null ? null : Number(conversation.first_main_seq),
    lastMainSeq: Number(conversation.last_main_seq),
    before: row.page.before.map((json) => messageFromJson(json)),
    from: row.page.from.map((json) => messageFromJson(json)),
    reactions: reactionsFromJson(row.page.reactions),
  };
}

/** parley_timeline_page's answer as JSON. */
interface TimelinePageJson {
  conversation: {
    type: ConversationType;
    role: Role | null;
    first_main_seq?: number | null;
    last_main_seq?: number;
  } | null;
  anchor_found?: boolean;
  before: Record<string, unknown>[];
  from: Record<string, unknown>[];
  reactions: ReactionSummaryJson[];
}

/** Replies of a thread, oldest first, after `afterSeq`. */
export function listReplies(
  scope: TenantScope,
  rootId: string,
  page: { afterSeq: number; limit: number },
): Promise<StoredMessage[]> {
  return scope.tx
    .select(messageColumns)
    .from(messages)
    .where(
      and(
        eq(messages.tenantId, scope.tenantId),
        eq(messages.threadRootId, rootId),
        gt(messages.seq, page.afterSeq),
      ),
    )
    .orderBy(asc(messages.seq))
    .limit(page.limit);
}

/** Messages by (conversation, seq), for the last-message previews of a conversation list. */
export function findMessagesAt(
  scope: TenantScope,
  positions: { conversationId: string; seq: number }[],
): Promise<StoredMessage[]> {
  if (positions.length === 0) return Promise.resolve([]);
  // One JSON parameter, not a list of row literals: planning a 50-pair IN list under RLS took longer
  // (3-6 ms) than running it; a semi-join on a record set plans the same whatever its length.
  const pairs = JSON.stringify(
    positions.map((position) => ({ conversation_id: position.conversationId, seq: position.seq })),
  );
  return scope.tx
    .select(messageColumns)
    .from(messages)
    .where(
      and(
        eq(messages.tenantId, scope.tenantId),
        sql`(${messages.conversationId}, ${messages.seq}) IN (
          SELECT p.conversation_id, p.seq FROM jsonb_to_recordset(${pairs}::jsonb) AS p (conversation_id uuid, seq bigint))`,
      ),
    );
}

/** Pinned messages of a conversation, most recently pinned first, after the (pinned_at, seq) key. */
export function listPinned(
  scope: TenantScope,
  conversationId: string,
  page: { after: { pinnedAt: string; seq: number } | undefined; limit: number },
): Promise<StoredMessage[]> {
  return scope.tx
    .select(messageColumns)
    .from(messages)
    .where(
      and(
        inConversation(scope, conversationId),
        isNotNull(messages.pinnedAt),
        page.after === undefined
          ? undefined
          : sql`(${messages.pinnedAt}, ${messages.seq}) < (${page.after.pinnedAt}::timestamptz, ${page.after.seq}::bigint)`,
      ),
    )
    .orderBy(desc(messages.pinnedAt), desc(messages.seq))
    .limit(page.limit);
}

/** Keeps the version a message had before an edit. Call with the message locked. */
export async function insertEdit(
  scope: TenantScope,
  edit: { messageId: string; text: string; writtenAt: Date },
): Promise<void> {
  await scope.tx.execute(sql`
    INSERT INTO message_edits (tenant_id, message_id, version, text, written_at, replaced_at)
    SELECT ${scope.tenantId}, ${edit.messageId}, coalesce(max(version), 0) + 1, ${edit.text}, ${edit.writtenAt}, now()
    FROM message_edits WHERE tenant_id = ${scope.tenantId} AND message_id = ${edit.messageId}`);
}

/** The latest `limit` earlier versions of a message, oldest first. */
export async function listEdits(scope: TenantScope, messageId: string, limit: number): Promise<EditRow[]> {
  const latest = await scope.tx
    .select()
    .from(messageEdits)
    .where(and(eq(messageEdits.tenantId, scope.tenantId), eq(messageEdits.messageId, messageId)))
    .orderBy(desc(messageEdits.version))
    .limit(limit);
  return latest.reverse();
}

/** Purges what a deleted message must not keep: its edit history and its reactions. */
export async function purgeMessageHistory(scope: TenantScope, messageId: string): Promise<void> {
  await scope.tx
    .delete(messageEdits)
    .where(and(eq(messageEdits.tenantId, scope.tenantId), eq(messageEdits.messageId, messageId)));
  await scope.tx
    .delete(messageReactions)
    .where(and(eq(messageReactions.tenantId, scope.tenantId), eq(messageReactions.messageId, messageId)));
}

/** Every message a user sent, oldest first (for export). */
export function listMessagesOf(scope: TenantScope, userId: string): Promise<StoredMessage[]> {
  return scope.tx
    .select(messageColumns)
    .from(messages)
    .where(and(eq(messages.tenantId, scope.tenantId), eq(messages.senderId, userId)))
    .orderBy(asc(messages.createdAt), asc(messages.id));
}

/**
 * Erasure: redacts every message a user sent to a tombstone (seq kept, content, mentions, metadata, pins and
 * history purged), removes their reactions, and recounts the replies of threads that lost some.
 */
export async function redactMessagesOf(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(sql`
    DELETE FROM message_edits e USING messages m
    WHERE e.tenant_id = ${scope.tenantId} AND m.tenant_id = e.tenant_id AND m.id = e.message_id
      AND m.sender_id = ${userId}`);
  await scope.tx.execute(sql`
    DELETE FROM message_reactions r USING messages m
    WHERE r.tenant_id = ${scope.tenantId} AND m.tenant_id = r.tenant_id AND m.id = r.message_id
      AND m.sender_id = ${userId}`);
  await scope.tx
    .delete(messageReactions)
    .where(and(eq(messageReactions.tenantId, scope.tenantId), eq(messageReactions.userId, userId)));
  const redacted = await scope.tx
    .update(messages)
    .set({
      text: null,
      mentions: sql`'{}'::text[]`,
      metadata: {},
      attachments: [],
      clientMsgId: null,
      pinnedAt: null,
      pinnedBy: null,
      deletedAt: sql`coalesce(${messages.deletedAt}, now())`,
    })
    .where(and(eq(messages.tenantId, scope.tenantId), eq(messages.senderId, userId)))
    .returning({ threadRootId: messages.threadRootId });
  const roots = [
    ...new Set(redacted.flatMap((row) => (row.threadRootId === null ? [] : [row.threadRootId]))),
  ];
  if (roots.length > 0) {
    await scope.tx.execute(sql`
      UPDATE messages root SET reply_count = (
        SELECT count(*) FROM messages r
        WHERE r.tenant_id = root.tenant_id AND r.thread_root_id = root.id AND r.deleted_at IS NULL)
      WHERE root.tenant_id = ${scope.tenantId}
        AND ${isAnyOf(sql`root.id`, roots, 'uuid')}`);
  }
}
