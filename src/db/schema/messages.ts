import { sql } from 'drizzle-orm';
import {
  bigint,
  customType,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { conversations } from './conversations.ts';
import { tenantIsolation } from './rls.ts';
import { users } from './users.ts';
import type { AttachmentFacts } from './attachments.ts';
import { timestamptz } from './columns.ts';

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/**
 * A message, addressed by (conversation, seq): seq is dense per conversation and allocated under the
 * conversation's row lock, so commit order is seq order. A deleted message stays as a tombstone (its text,
 * mentions and history purged) so seq stays dense. `text` is null for tombstones and, later, for end-to-end
 * encrypted messages, whose content the server cannot read.
 */
export const messages = pgTable(
  'messages',
  {
    tenantId: uuid('tenant_id').notNull(),
    conversationId: uuid('conversation_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    id: uuid('id').notNull(),
    senderId: text('sender_id').notNull(),
    text: text('text'),
    mentions: text('mentions')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    threadRootId: uuid('thread_root_id'),
    replyCount: integer('reply_count').notNull().default(0),
    lastReplyAt: timestamptz('last_reply_at'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    /** What the message's attachments are (docs/ATTACHMENTS.md), kept with it so every reader has them. */
    attachments: jsonb('attachments').$type<AttachmentFacts[]>().notNull().default([]),
    clientMsgId: text('client_msg_id'),
    pinnedAt: timestamptz('pinned_at'),
    pinnedBy: text('pinned_by'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    editedAt: timestamptz('edited_at'),
    deletedAt: timestamptz('deleted_at'),
    searchVector: tsvector('search_vector').generatedAlwaysAs(
      sql`to_tsvector('english', coalesce(text, ''))`,
    ),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.conversationId, t.seq] }),
    uniqueIndex('messages_id_idx').on(t.tenantId, t.id),
    uniqueIndex('messages_client_msg_id_idx')
      .on(t.tenantId, t.senderId, t.clientMsgId)
      .where(sql`${t.clientMsgId} IS NOT NULL`),
    index('messages_main_timeline_idx')
      .on(t.tenantId, t.conversationId, t.seq)
      .where(sql`${t.threadRootId} IS NULL`),
    index('messages_thread_idx')
      .on(t.tenantId, t.threadRootId, t.seq)
      .where(sql`${t.threadRootId} IS NOT NULL`),
    index('messages_pinned_idx')
      .on(t.tenantId, t.conversationId, t.pinnedAt)
      .where(sql`${t.pinnedAt} IS NOT NULL`),
    index('messages_sender_idx').on(t.tenantId, t.senderId),
    index('messages_search_idx').using('gin', t.tenantId, t.searchVector),
    index('messages_text_trigram_idx').using('gin', t.tenantId, t.text.op('gin_trgm_ops')),
    foreignKey({
      name: 'messages_conversation_fk',
      columns: [t.tenantId, t.conversationId],
      foreignColumns: [conversations.tenantId, conversations.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);

/** Earlier versions of an edited message, oldest first; purged when the message is deleted. */
export const messageEdits = pgTable(
  'message_edits',
  {
    tenantId: uuid('tenant_id').notNull(),
    messageId: uuid('message_id').notNull(),
    version: integer('version').notNull(),
    text: text('text').notNull(),
    /** When this version was written (the message's creation or an earlier edit). */
    writtenAt: timestamptz('written_at').notNull(),
    /** When this version was replaced by the next. */
    replacedAt: timestamptz('replaced_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.messageId, t.version] }),
    foreignKey({
      name: 'message_edits_message_fk',
      columns: [t.tenantId, t.messageId],
      foreignColumns: [messages.tenantId, messages.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);

/** One user's reaction with one emoji to one message. */
export const messageReactions = pgTable(
  'message_reactions',
  {
    tenantId: uuid('tenant_id').notNull(),
    messageId: uuid('message_id').notNull(),
    emoji: text('emoji').notNull(),
    userId: text('user_id').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.messageId, t.emoji, t.userId] }),
    index('message_reactions_user_idx').on(t.tenantId, t.userId),
    foreignKey({
      name: 'message_reactions_message_fk',
      columns: [t.tenantId, t.messageId],
      foreignColumns: [messages.tenantId, messages.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'message_reactions_user_fk',
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    tenantIsolation(),
  ],
);
