import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import type { ObjectStorage } from '../../storage/object-storage.ts';
import {
  claimStorageRemovals,
  finishStorageRemoval,
  postponeStorageRemoval,
} from './attachments.repository.ts';
import { tusUploadOfKey } from './attachment-keys.ts';

/** How long a claimed removal is this process's before another may take it over. */
const REMOVAL_LEASE_SECONDS = 60;
/** The wait before a failed removal is tried again: storage is down, or refuses for now. */
const RETRY_AFTER_SECONDS = 60;

/**
 * Removes stored objects queued for removal (docs/ATTACHMENTS.md, "Life cycle"): deleted attachments'
 * bytes, an image's upload once processed, what unfinished or finished resumable uploads stored. Retried until done; removing what is already gone succeeds.
 */
export class StorageRemover {
  constructor(
    private readonly options: {
      orm: Orm;
      storage: ObjectStorage;
      onFailure: (error: unknown, key: string) => void;
    },
  ) {}

  /** One pass: claims due removals and does them; how many it claimed. */
  async runOnce(limit: number): Promise<number> {
    const { orm, storage } = this.options;
    const claims = await claimStorageRemovals(orm, limit, REMOVAL_LEASE_SECONDS);
    await Promise.all(
      claims.map(async (claim) => {
        try {
          // An unfinished tus upload's bytes are the tus store's (its own side objects too).
          if (tusUploadOfKey(claim.key) === undefined) await storage.delete(claim.key);
          else await storage.resumable().remove(claim.key);
          await inTenant(orm, claim.tenantId, (scope) => finishStorageRemoval(scope, claim.id));
        } catch (error) {
          this.options.onFailure(error, claim.key);
          const message = error instanceof Error ? error.message.slice(0, 500) : 'failed';
          await inTenant(orm, claim.tenantId, (scope) =>
            postponeStorageRemoval(scope, claim.id, RETRY_AFTER_SECONDS, message),
          ).catch(() => undefined);
        }
      }),
    );
    return claims.length;
  }
}
