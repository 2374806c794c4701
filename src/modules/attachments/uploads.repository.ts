import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { rowsOf, type Orm } from '../../db/client.ts';
import { uploads } from '../../db/schema/attachments.ts';
import type { TenantScope } from '../../db/tenant-scope.ts';

export type UploadRow = typeof uploads.$inferSelect;

/** Records an upload under way; its quota is reserved by the caller in the same transaction. */
export async function insertUpload(
  scope: TenantScope,
  row: Pick<UploadRow, 'id' | 'uploaderId' | 'method' | 'name' | 'length' | 'key'> & { expiresInMs: number },
): Promise<UploadRow> {
  const { expiresInMs, ...values } = row;
  const [inserted] = await scope.tx
    .insert(uploads)
    .values({
      ...values,
      tenantId: scope.tenantId,
      expiresAt: sql`now() + make_interval(secs => ${expiresInMs / 1000})`,
    })
    .returning();
  if (!inserted) throw new Error('inserting an upload returned no row');
  return inserted;
}

export async function findUpload(
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<UploadRow | undefined> {
  const query = scope.tx
    .select()
    .from(uploads)
    .where(and(eq(uploads.tenantId, scope.tenantId), eq(uploads.id, id)));
  const [row] = options.forUpdate ? await query.for('update') : await query;
  return row;
}

/**
 * Marks an upload finished (its bytes are an attachment's now): its key no longer names anything to remove
 * when the row goes. False when it was finished already or is gone.
 */
export async function markUploadFinished(scope: TenantScope, id: string): Promise<boolean> {
  const updated = await scope.tx
    .update(uploads)
    .set({ key: null, finishedAt: sql`now()` })
    .where(and(eq(uploads.tenantId, scope.tenantId), eq(uploads.id, id), isNull(uploads.finishedAt)))
    .returning({ id: uploads.id });
  return updated.length === 1;
}

/** Deletes an upload row; its trigger queues the removal of what an unfinished one stored. */
export async function deleteUpload(scope: TenantScope, id: string): Promise<void> {
  await scope.tx.delete(uploads).where(and(eq(uploads.tenantId, scope.tenantId), eq(uploads.id, id)));
}

/**
 * Takes the upload's write lease for `holder` until `leaseMs` from now, when it is free, expired, or held by
 * `holder` already (a renewal). Whether it did.
 */
export async function takeUploadLease(
  scope: TenantScope,
  id: string,
  holder: string,
  leaseMs: number,
): Promise<boolean> {
  const taken = await scope.tx
    .update(uploads)
    .set({ lockHolder: holder, lockExpiresAt: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
    .where(
      and(
        eq(uploads.tenantId, scope.tenantId),
        eq(uploads.id, id),
        or(isNull(uploads.lockHolder), eq(uploads.lockHolder, holder), lt(uploads.lockExpiresAt, sql`now()`)),
      ),
    )
    .returning({ id: uploads.id });
  return taken.length === 1;
}

/** Gives the lease back, if `holder` still has it. */
export async function releaseUploadLease(scope: TenantScope, id: string, holder: string): Promise<void> {
  await scope.tx
    .update(uploads)
    .set({ lockHolder: null, lockExpiresAt: null })
    .where(and(eq(uploads.tenantId, scope.tenantId), eq(uploads.id, id), eq(uploads.lockHolder, holder)));
}

/**
 * Deletes uploads past their expiry, of every tenant, up to `limit` (parley_purge_expired_uploads); what
 * unfinished ones stored is queued for removal. How many it deleted.
 */
export async function purgeExpiredUploads(orm: Orm, limit: number): Promise<number> {
  const result = await orm.execute(sql`SELECT parley_purge_expired_uploads(${limit}) AS purged`);
  return Number(rowsOf<{ purged: string | number }>(result)[0]?.purged ?? 0);
}

/**
 * Deletes a user's uploads (their erasure) and gives back the quota reserved for the unfinished ones; the
 * rows' trigger queues the removal of what they stored.
 */
export async function deleteUploadsOf(scope: TenantScope, userId: string): Promise<void> {
  await scope.tx.execute(sql`
    DELETE FROM storage_reservations r
    USING uploads u
    WHERE r.tenant_id = ${scope.tenantId} AND u.tenant_id = r.tenant_id AND u.id = r.id
      AND u.uploader_id = ${userId}`);
  await scope.tx
    .delete(uploads)
    .where(and(eq(uploads.tenantId, scope.tenantId), eq(uploads.uploaderId, userId)));
}

/**
 * Of tus upload ids named by objects in storage, those whose upload still holds its bytes (a row, not
 * finished). parley_upload_holds, across tenants.
 */
export async function uploadHolds(orm: Orm, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const result = await orm.execute(
    sql`SELECT id FROM parley_upload_holds(${`{${ids.join(',')}}`}::uuid[])`,
  );
  return new Set(rowsOf<{ id: string }>(result).map((row) => row.id));
}
