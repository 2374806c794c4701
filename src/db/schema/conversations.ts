import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { users } from './users.ts';
import { tenantIsolation } from './rls.ts';

/** A direct conversation, a private group or a tenant-wide channel. Soft-deleted with deleted_at. */
export const conversations = pgTable(
  'conversations',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    type: text('type', { enum: ['direct', 'group', 'channel'] }).notNull(),
    name: text('name'),
    topic: text('topic'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdBy: text('created_by').notNull(),
    /** For direct conversations only: the two user ids, sorted, joined by a space (never in a user id). */
    directKey: text('direct_key'),
    /** Kept under the row lock on every membership change, so no request counts 100,000 rows. */
    memberCount: integer('member_count').notNull().default(0),
    /** Highest message seq allocated so far (messages allocate seq under this row's lock). */
    lastMessageSeq: bigint('last_message_seq', { mode: 'number' }).notNull().default(0),
    /** Lowest and highest seq of the main timeline (thread replies excluded), for has_more_* and unread. */
    firstMainSeq: bigint('first_main_seq', { mode: 'number' }),
    lastMainSeq: bigint('last_main_seq', { mode: 'number' }).notNull().default(0),
    /** Orders a user's conversation list: creation, then each message. */
    lastActivityAt: timestamp('last_activity_at', { withTimezone: true, precision: 3 })
      .notNull()
      .defaultNow(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    archivedAt: timestamp('archived_at', { withTimezone: true, precision: 3 }),
    deletedAt: timestamp('deleted_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex('conversations_direct_pair_idx')
      .on(t.tenantId, t.directKey)
      .where(sql`${t.directKey} IS NOT NULL AND ${t.deletedAt} IS NULL`),
    index('conversations_channels_idx')
      .on(t.tenantId, t.id)
      .where(sql`${t.type} = 'channel' AND ${t.deletedAt} IS NULL`),
    check('conversations_type_check', sql`${t.type} IN ('direct', 'group', 'channel')`),
    check('conversations_direct_key_check', sql`(${t.type} = 'direct') = (${t.directKey} IS NOT NULL)`),
    tenantIsolation(),
  ],
);

/** Membership of a user in a conversation, with the user's role and personal settings there. */
export const conversationMembers = pgTable(
  'conversation_members',
  {
    tenantId: uuid('tenant_id').notNull(),
    conversationId: uuid('conversation_id').notNull(),
    userId: text('user_id').notNull(),
    role: text('role', { enum: ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'] }).notNull(),
    /** Read watermark: the highest seq this member has read (see the messaging core). */
    lastReadSeq: bigint('last_read_seq', { mode: 'number' }).notNull().default(0),
    /**
     * Direct and group conversations: other people's non-deleted main-timeline messages after the
     * watermark, and of those the ones mentioning this member. Kept by triggers (src/db/functions), never
     * written by the application; 0 in channels, whose counts are read by a scan (reads.repository.ts).
     */
    unreadCount: integer('unread_count').notNull().default(0),
    mentionCount: integer('mention_count').notNull().default(0),
    mutedUntil: timestamp('muted_until', { withTimezone: true, precision: 3 }),
    joinedAt: timestamp('joined_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.conversationId, t.userId] }),
    index('conversation_members_user_idx').on(t.tenantId, t.userId, t.conversationId),
    foreignKey({
      name: 'conversation_members_conversation_fk',
      columns: [t.tenantId, t.conversationId],
      foreignColumns: [conversations.tenantId, conversations.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'conversation_members_user_fk',
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    check('conversation_members_role_check', sql`${t.role} IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER')`),
    tenantIsolation(),
  ],
);
