import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uuid,
} from 'drizzle-orm/pg-core';
import { tenants } from './control.ts';
import { conversations } from './conversations.ts';
import { tenantIsolation } from './rls.ts';
import { users } from './users.ts';
import { timestamptz } from './columns.ts';

/** One stored form of an attachment's bytes: what is served for it (docs/ATTACHMENTS.md). */
export interface StoredRendition {
  /** `original` (for images: re-encoded without metadata), `thumb256`, `thumb1024`. */
  rendition: 'original' | 'thumb256' | 'thumb1024';
  /** Where the bytes are in storage. */
  key: string;
  size: number;
  /** SHA-256 (hex) of the bytes: their ETag. */
  sha256: string;
  contentType: string;
  width: number | null;
  height: number | null;
}

/**
 * What a message keeps of each of its attachments (messages.attachments), in the API's field names: the
 * attachment as readers see it, less the links, which are signed when it is shown.
 */
export interface AttachmentFacts {
  id: string;
  uploader_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  width: number | null;
  height: number | null;
  /** Audio and video only; absent from what messages kept before durations were read. */
  duration_ms?: number | null;
  status: 'pending' | 'ready' | 'rejected';
  rejected_reason: string | null;
  thumbnails: { rendition: 'thumb256' | 'thumb1024'; width: number; height: number; content_type: string }[];
  created_at: string;
}

/**
 * A file a user uploaded (docs/ATTACHMENTS.md): `pending` until processed (its type sniffed at upload; an
 * image's thumbnails, dimensions and metadata-free original made by background work), then `ready` or
 * `rejected`. Unbound (no message) until a send names it; bound ones go with their message. Deleting a
 * row, however it happens (the uploader, its message deleted, its user erased, its tenant deleted), queues
 * the removal of its stored bytes and gives its bytes back to the tenant's quota: the trigger of
 * parley_attachment_removed, in the same transaction.
 */
export const attachments = pgTable(
  'attachments',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    uploaderId: text('uploader_id').notNull(),
    conversationId: uuid('conversation_id'),
    messageId: uuid('message_id'),
    /** The file name the client gave, cleaned (no path, no control characters, bounded). */
    name: text('name').notNull(),
    /** What the bytes are, sniffed; never the client's claim. */
    contentType: text('content_type').notNull(),
    /** Bytes and SHA-256 of what is served as the original (for images, after metadata is stripped). */
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    width: integer('width'),
    height: integer('height'),
    /** Audio and video: their length, read from the file's headers; null for anything else or unreadable. */
    durationMs: integer('duration_ms'),
    status: text('status').$type<'pending' | 'ready' | 'rejected'>().notNull().default('pending'),
    rejectedReason: text('rejected_reason'),
    /** Where the upload's bytes are; null once processing replaced them (an image's metadata-free original). */
    uploadKey: text('upload_key'),
    renditions: jsonb('renditions').$type<StoredRendition[]>().notNull().default([]),
    /** What this attachment counts against its tenant's quota: every object it keeps in storage. */
    storedBytes: bigint('stored_bytes', { mode: 'number' }).notNull(),
    /** Processing: attempts made, when the next may start (a claim moves it a lease ahead), the last error. */
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at'),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    boundAt: timestamptz('bound_at'),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // A message's attachments, and the removal of them with it.
    index('attachments_message_idx')
      .on(t.tenantId, t.messageId)
      .where(sql`${t.messageId} IS NOT NULL`),
    // What the processor claims: pending ones that are due, oldest due first.
    index('attachments_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    // Uploads never sent, by age (removed after a day).
    index('attachments_unbound_idx')
      .on(t.createdAt)
      .where(sql`${t.messageId} IS NULL`),
    foreignKey({
      name: 'attachments_uploader_fk',
      columns: [t.tenantId, t.uploaderId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'attachments_conversation_fk',
      columns: [t.tenantId, t.conversationId],
      foreignColumns: [conversations.tenantId, conversations.id],
    }).onDelete('cascade'),
    check('attachments_status_check', sql`${t.status} IN ('pending', 'ready', 'rejected')`),
    check('attachments_bound_check', sql`(${t.messageId} IS NULL) = (${t.conversationId} IS NULL)`),
    tenantIsolation(),
  ],
);

/**
 * Stored bytes to remove (docs/ATTACHMENTS.md, "Life cycle"): queued by the deletion of an attachment in
 * the same transaction, removed by background work and retried until done. Not tied to its tenant by a
 * foreign key: a deleted tenant's bytes are removed after the tenant is gone.
 */
export const storageRemovals = pgTable(
  'storage_removals',
  {
    tenantId: uuid('tenant_id').notNull(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    key: text('key').notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // What the remover claims, across tenants: the due ones, oldest first.
    index('storage_removals_due_idx').on(t.nextAttemptAt),
    tenantIsolation(),
  ],
);

/**
 * Bytes an upload under way may still write (docs/ATTACHMENTS.md, "Quota"): taken before its first byte
 * is accepted, under the tenant row's lock, so two racing uploads cannot both pass the last free bytes;
 * released when the upload ends either way. One left by a crashed process stops counting when it expires.
 */
export const storageReservations = pgTable(
  'storage_reservations',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] }), tenantIsolation()],
);

/**
 * An upload under way that is not yet an attachment (docs/ATTACHMENTS.md, "Resumable and direct uploads"):
 * a tus upload at /v1/uploads, or a presigned PUT straight to S3. Its id is the attachment's it becomes; its
 * quota is reserved (storage_reservations, same id) for as long as it may take. Deleting the row before it
 * finished (it expired, its user was erased, its tenant deleted, the client terminated it) queues the removal
 * of what it stored, by the trigger of parley_upload_removed. A finished row stays until it expires, so a
 * client that resumes a finished upload is told it is done.
 */
export const uploads = pgTable(
  'uploads',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    uploaderId: text('uploader_id').notNull(),
    /** `tus` (/v1/uploads) or `presigned` (a PUT straight to S3). */
    method: text('method').$type<'tus' | 'presigned'>().notNull(),
    /** The file name, checked as a multipart upload's is. */
    name: text('name').notNull(),
    /** The bytes the client declared; exactly these must arrive. */
    length: bigint('length', { mode: 'number' }).notNull(),
    /** What it stored so far, to remove if it never finishes (a storage key); null once finished. */
    key: text('key'),
    expiresAt: timestamptz('expires_at').notNull(),
    finishedAt: timestamptz('finished_at'),
    /** The lease of the process writing to it (tus): who, and until when unless renewed. */
    lockHolder: text('lock_holder'),
    lockExpiresAt: timestamptz('lock_expires_at'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // What the purge of expired uploads finds, across tenants.
    index('uploads_expires_idx').on(t.expiresAt),
    foreignKey({
      name: 'uploads_uploader_fk',
      columns: [t.tenantId, t.uploaderId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete('cascade'),
    check('uploads_method_check', sql`${t.method} IN ('tus', 'presigned')`),
    check('uploads_length_check', sql`${t.length} > 0`),
    tenantIsolation(),
  ],
);
