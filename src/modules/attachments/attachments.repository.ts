import { and, eq, inArray, sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { arrayParam } from '../../db/params.ts';
import {
  attachments,
  storageReservations,
  type AttachmentFacts,
  type StoredRendition,
} from '../../db/schema/attachments.ts';
import { tenants } from '../../db/schema/control.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type AttachmentRow = typeof attachments.$inferSelect;
export type NewAttachment = Omit<typeof attachments.$inferInsert, 'tenantId' | 'createdAt'>;

/**
 * Reserves `bytes` of the tenant's quota for an upload about to start, or answers how much is free when
 * they do not fit. The tenant row is locked first, so reservations of one tenant are taken one at a time:
 * two uploads racing for the last free bytes cannot both get them. Expired reservations (of a process that
 * died mid-upload) stop counting and are removed here.
 */
export async function reserveStorage(
  scope: TenantScope,
  reservation: { id: string; bytes: number; expiresInMs: number; defaultQuotaBytes: number },
): Promise<{ reserved: true } | { reserved: false; freeBytes: number }> {
  const [tenant] = rowsOf<{ used: string | number; quota: string | number }>(
    await scope.tx.execute(sql`
      SELECT storage_bytes AS used, coalesce(storage_quota_bytes, ${reservation.defaultQuotaBytes}) AS quota
      FROM tenants WHERE id = ${scope.tenantId}
      FOR NO KEY UPDATE`),
  );
  if (!tenant) throw new Error(`tenant ${scope.tenantId} vanished during an upload`);
  await scope.tx.execute(sql`
    DELETE FROM storage_reservations WHERE tenant_id = ${scope.tenantId} AND expires_at <= now()`);
  const [held] = rowsOf<{ bytes: string | number }>(
    await scope.tx.execute(sql`
      SELECT coalesce(sum(bytes), 0) AS bytes FROM storage_reservations WHERE tenant_id = ${scope.tenantId}`),
  );
  const free = Number(tenant.quota) - Number(tenant.used) - Number(held?.bytes ?? 0);
  if (reservation.bytes > free) return { reserved: false, freeBytes: Math.max(0, free) };
  await scope.tx.insert(storageReservations).values({
    tenantId: scope.tenantId,
    id: reservation.id,
    bytes: reservation.bytes,
    expiresAt: sql`now() + make_interval(secs => ${reservation.expiresInMs / 1000})`,
  });
  return { reserved: true };
}

/** Gives a reservation back (the upload ended, stored or not). */
export async function releaseReservation(scope: TenantScope, id: string): Promise<void> {
  await scope.tx
    .delete(storageReservations)
    .where(and(eq(storageReservations.tenantId, scope.tenantId), eq(storageReservations.id, id)));
}

/** Records an uploaded attachment and counts its bytes in the tenant's usage. */
export async function insertAttachment(scope: TenantScope, row: NewAttachment): Promise<AttachmentRow> {
  const [inserted] = await scope.tx
    .insert(attachments)
    .values({ ...row, tenantId: scope.tenantId })
    .returning();
  if (!inserted) throw new Error('inserting an attachment returned no row');
  await addStoredBytes(scope, row.storedBytes);
  return inserted;
}

/** Moves the tenant's usage by `bytes` (negative: given back). */
export async function addStoredBytes(scope: TenantScope, bytes: number): Promise<void> {
  if (bytes === 0) return;
  await scope.tx
    .update(tenants)
    .set({ storageBytes: sql`${tenants.storageBytes} + ${bytes}` })
    .where(eq(tenants.id, scope.tenantId));
}

export async function findAttachment(
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<AttachmentRow | undefined> {
  const query = scope.tx
    .select()
    .from(attachments)
    .where(and(eq(attachments.tenantId, scope.tenantId), eq(attachments.id, id)));
  const [row] = options.forUpdate ? await query.for('update') : await query;
  return row;
}

/** The attachments of `ids` that exist, locked for the send that binds them; in the order of `ids`. */
export async function lockAttachments(scope: TenantScope, ids: string[]): Promise<AttachmentRow[]> {
  if (ids.length === 0) return [];
  const rows = await scope.tx
    .select()
    .from(attachments)
    .where(and(eq(attachments.tenantId, scope.tenantId), inArray(attachments.id, ids)))
    .orderBy(attachments.id)
    .for('update');
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** Binds attachments to the message a send made. */
export async function bindAttachments(
  scope: TenantScope,
  ids: string[],
  target: { conversationId: string; messageId: string },
): Promise<void> {
  if (ids.length === 0) return;
  await scope.tx
    .update(attachments)
    .set({ conversationId: target.conversationId, messageId: target.messageId, boundAt: sql`now()` })
    .where(and(eq(attachments.tenantId, scope.tenantId), inArray(attachments.id, ids)));
}

/** Deletes an attachment row; its trigger queues the removal of its bytes and gives them back. */
export async function deleteAttachment(scope: TenantScope, id: string): Promise<void> {
  await scope.tx
    .delete(attachments)
    .where(and(eq(attachments.tenantId, scope.tenantId), eq(attachments.id, id)));
}

/** Deletes the attachments of a message (it was deleted); each row's trigger queues its bytes' removal. */
export async function deleteMessageAttachments(scope: TenantScope, messageId: string): Promise<number> {
  const deleted = await scope.tx
    .delete(attachments)
    .where(and(eq(attachments.tenantId, scope.tenantId), eq(attachments.messageId, messageId)))
    .returning({ id: attachments.id });
  return deleted.length;
}

/** Deletes every attachment a user uploaded (the user is erased); the trigger queues their bytes' removal. */
export async function deleteAttachmentsOf(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx
    .delete(attachments)
    .where(and(eq(attachments.tenantId, scope.tenantId), eq(attachments.uploaderId, userId)));
}

/** Processing finished: the attachment's outcome, in its tenant's transaction. */
export async function updateProcessedAttachment(
  scope: TenantScope,
  id: string,
  outcome: Partial<
    Pick<
      AttachmentRow,
      | 'status'
      | 'rejectedReason'
      | 'contentType'
      | 'size'
      | 'sha256'
      | 'width'
      | 'height'
      | 'uploadKey'
      | 'storedBytes'
      | 'nextAttemptAt'
      | 'lastError'
    >
  > & { renditions?: StoredRendition[] },
): Promise<AttachmentRow | undefined> {
  const [row] = await scope.tx
    .update(attachments)
    .set(outcome)
    .where(and(eq(attachments.tenantId, scope.tenantId), eq(attachments.id, id)))
    .returning();
  return row;
}

/** Queues stored objects for removal (background work removes them, retried until done). */
export async function queueStorageRemovals(scope: TenantScope, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await scope.tx.execute(sql`
    INSERT INTO storage_removals (tenant_id, key)
    SELECT ${scope.tenantId}, unnest(${arrayParam(keys, 'text')})`);
}

/** Replaces what a message keeps of one of its attachments (processing changed it). */
export async function updateMessageAttachment(
  scope: TenantScope,
  messageId: string,
  facts: AttachmentFacts,
): Promise<{ conversationId: string; seq: number } | undefined> {
  const [row] = rowsOf<{ conversation_id: string; seq: string | number }>(
    await scope.tx.execute(sql`
      UPDATE messages m
      SET attachments = (
        SELECT coalesce(jsonb_agg(CASE WHEN a ->> 'id' = ${facts.id} THEN ${JSON.stringify(facts)}::jsonb ELSE a END
                                  ORDER BY ordinality), '[]'::jsonb)
        FROM jsonb_array_elements(m.attachments) WITH ORDINALITY AS e(a, ordinality))
      WHERE m.tenant_id = ${scope.tenantId} AND m.id = ${messageId}
      RETURNING m.conversation_id, m.seq`),
  );
  return row ? { conversationId: row.conversation_id, seq: Number(row.seq) } : undefined;
}

/** Sets what a message keeps of its attachments (the send that made it bound them). */
export async function setMessageAttachments(
  scope: TenantScope,
  messageId: string,
  facts: readonly object[],
): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE messages SET attachments = ${JSON.stringify(facts)}::jsonb
    WHERE tenant_id = ${scope.tenantId} AND id = ${messageId}`);
}

/** The tenant's storage use: bytes kept, its quota, attachments kept. */
export async function storageUsage(
  scope: TenantScope,
  defaultQuotaBytes: number,
): Promise<{ storageBytes: number; quotaBytes: number; attachments: number } | undefined> {
  const [row] = rowsOf<{ used: string | number; quota: string | number; kept: string | number }>(
    await scope.tx.execute(sql`
      SELECT t.storage_bytes AS used, coalesce(t.storage_quota_bytes, ${defaultQuotaBytes}) AS quota,
             (SELECT count(*) FROM attachments a WHERE a.tenant_id = t.id) AS kept
      FROM tenants t WHERE t.id = ${scope.tenantId}`),
  );
  if (!row) return undefined;
  return { storageBytes: Number(row.used), quotaBytes: Number(row.quota), attachments: Number(row.kept) };
}

/** Claims pending attachments that are due, of every tenant (parley_claim_attachments). */
export async function claimAttachments(
  orm: Orm,
  limit: number,
  leaseSeconds: number,
): Promise<{ tenantId: string; id: string }[]> {
  const result = await orm.execute(
    sql`SELECT tenant_id, id FROM parley_claim_attachments(${limit}, make_interval(secs => ${leaseSeconds}))`,
  );
  return rowsOf<{ tenant_id: string; id: string }>(result).map((row) => ({
    tenantId: row.tenant_id,
    id: row.id,
  }));
}

/** Claims stored objects due for removal, of every tenant (parley_claim_storage_removals). */
export async function claimStorageRemovals(
  orm: Orm,
  limit: number,
  leaseSeconds: number,
): Promise<{ tenantId: string; id: number; key: string }[]> {
  const result = await orm.execute(
    sql`SELECT tenant_id, id, key FROM parley_claim_storage_removals(${limit}, make_interval(secs => ${leaseSeconds}))`,
  );
  return rowsOf<{ tenant_id: string; id: string | number; key: string }>(result).map((row) => ({
    tenantId: row.tenant_id,
    id: Number(row.id),
    key: row.key,
  }));
}

/** A removal done: forgotten. */
export async function finishStorageRemoval(scope: TenantScope, id: number): Promise<void> {
  await scope.tx.execute(
    sql`DELETE FROM storage_removals WHERE tenant_id = ${scope.tenantId} AND id = ${id}`,
  );
}

/** A removal failed: tried again after `retryInSeconds`. */
export async function postponeStorageRemoval(
  scope: TenantScope,
  id: number,
  retryInSeconds: number,
  error: string,
): Promise<void> {
  await scope.tx.execute(sql`
    UPDATE storage_removals
    SET next_attempt_at = now() + make_interval(secs => ${retryInSeconds}), last_error = ${error}
    WHERE tenant_id = ${scope.tenantId} AND id = ${id}`);
}

/** How long an upload may wait to be sent before it is removed. */
export const UNSENT_ATTACHMENT_HOURS = 24;

/**
 * Deletes uploads never sent within a day, of every tenant, up to `limit` of them
 * (parley_purge_unsent_attachments); their bytes are queued for removal. How many it deleted.
 */
export async function purgeUnsentAttachments(orm: Orm, limit: number): Promise<number> {
  const result = await orm.execute(
    sql`SELECT parley_purge_unsent_attachments(make_interval(hours => ${UNSENT_ATTACHMENT_HOURS}), ${limit}) AS purged`,
  );
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}

/**
 * For attachments named by objects in storage: the keys each one's row names, and whether it is busy (an
 * upload or processing under way). parley_attachment_holds, across tenants.
 */
export async function attachmentHolds(
  orm: Orm,
  items: readonly { tenantId: string; id: string }[],
): Promise<{ tenantId: string; id: string; keys: string[]; isBusy: boolean }[]> {
  if (items.length === 0) return [];
  const result = await orm.execute(
    sql`SELECT tenant_id, id, keys, is_busy FROM parley_attachment_holds(${JSON.stringify(
      items.map((item) => ({ tenant_id: item.tenantId, id: item.id })),
    )}::jsonb)`,
  );
  return rowsOf<{ tenant_id: string; id: string; keys: string[]; is_busy: boolean }>(result).map((row) => ({
    tenantId: row.tenant_id,
    id: row.id,
    keys: row.keys,
    isBusy: row.is_busy,
  }));
}
