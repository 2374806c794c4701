import type { Orm } from '../../db/client.ts';
import type { ObjectStorage } from '../../storage/object-storage.ts';
import { attachmentOfKey, tusUploadKey, tusUploadOfStoredKey } from './attachment-keys.ts';
import { attachmentHolds } from './attachments.repository.ts';
import { uploadHolds } from './uploads.repository.ts';

/** Attachments whose objects are checked against the database in one query. */
const BATCH = 500;

/** What a garbage collection found, and removed unless it was a dry run. */
export interface GcReport {
  /** Objects looked at. */
  scanned: number;
  /** Objects whose key is not one Parley writes: left alone. */
  foreign: number;
  /** Objects no attachment names (and none busy with): removed, or would be. */
  orphans: { key: string; size: number }[];
  /** Whether they were removed. */
  removed: boolean;
  /** Temporary files of writes a crash cut short, deleted (never on a dry run). */
  staleTemp: number;
}

/** How old a temporary file must be to count as left by a crash: no upload takes a day. */
export const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/**
 * `parley attachments gc`: finds stored objects that no attachment names, and removes them unless `dryRun`.
 * An object is an orphan when its attachment has no row (an upload whose process died between storing the
 * bytes and recording the row, a row deleted while a removal was lost) or a row that names other keys (a
 * processing attempt that died after storing renditions), and the attachment is not busy: neither an
 * upload under way (its reservation) nor processing (`pending`). Objects of a tus upload (`tus/<id>` and
 * what its store keeps beside it) are orphans when the upload has no row or a finished one; they are removed
 * through the tus store, which also ends an S3 multipart upload left open. Temporary files of writes a crash
 * cut short (the disk's) older than a day are deleted too.
 */
export async function collectStorageGarbage(
  orm: Orm,
  storage: ObjectStorage,
  options: { dryRun: boolean },
): Promise<GcReport> {
  const report: GcReport = { scanned: 0, foreign: 0, orphans: [], removed: !options.dryRun, staleTemp: 0 };
  let batch = new Map<string, { tenantId: string; id: string; objects: { key: string; size: number }[] }>();
  const check = async () => {
    const holds = await attachmentHolds(orm, [...batch.values()]);
    for (const hold of holds) {
      const group = batch.get(`${hold.tenantId}/${hold.id}`);
      if (!group || hold.isBusy) continue;
      const named = new Set(hold.keys);
      for (const object of group.objects) {
        if (named.has(object.key)) continue;
        report.orphans.push(object);
        if (!options.dryRun) await storage.delete(object.key);
      }
    }
    batch = new Map();
  };
  let tusBatch = new Map<string, { key: string; size: number }[]>();
  const checkTus = async () => {
    const held = await uploadHolds(orm, [...tusBatch.keys()]);
    for (const [uploadId, objects] of tusBatch) {
      if (held.has(uploadId)) continue;
      report.orphans.push(...objects);
      if (!options.dryRun) await storage.resumable().remove(tusUploadKey(uploadId));
    }
    tusBatch = new Map();
  };
  for await (const object of storage.list('')) {
    report.scanned += 1;
    const uploadId = tusUploadOfStoredKey(object.key);
    if (uploadId !== undefined) {
      tusBatch.set(uploadId, [...(tusBatch.get(uploadId) ?? []), object]);
      if (tusBatch.size >= BATCH) await checkTus();
      continue;
    }
    const owner = attachmentOfKey(object.key);
    if (!owner) {
      report.foreign += 1;
      continue;
    }
    const { tenantId, id } = owner;
    const groupKey = `${tenantId}/${id}`;
    const group = batch.get(groupKey) ?? { tenantId, id, objects: [] };
    group.objects.push(object);
    batch.set(groupKey, group);
    if (batch.size >= BATCH) await check();
  }
  if (batch.size > 0) await check();
  if (tusBatch.size > 0) await checkTus();
  if (!options.dryRun && storage.removeStaleTemp)
    report.staleTemp = await storage.removeStaleTemp(STALE_TEMP_MS);
  return report;
}
