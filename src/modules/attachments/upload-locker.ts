import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { AppError } from '../../errors.ts';
import type { Bus } from '../events/events.bus.ts';
import { releaseUploadLease, takeUploadLease } from './uploads.repository.ts';

/** How long a lease lasts unless renewed: a process killed mid-write holds an upload at most this long. */
const LEASE_MS = 30_000;
/** How often a held lease is renewed. */
const RENEW_EVERY_MS = 10_000;
/** How long a request waits for an upload another request writes to before it answers 423 (tus: locked). */
const ACQUIRE_TIMEOUT_MS = 10_000;

export interface UploadLockerTimings {
  leaseMs: number;
  renewEveryMs: number;
  acquireTimeoutMs: number;
}

/**
 * The write locks of tus uploads (`@tus/server`'s `Locker`), shared by every process of a deployment: a lease
 * on the upload's row, renewed while held. A request that finds the lease taken asks its holder, wherever it
 * runs, to let go (over the bus), as the tus server's own in-memory locker does within one process, and waits
 * for it: a client that resumes after a dropped connection gets the upload once the old request has stored
 * what it had received. A holder that cannot renew (the database unreachable, the lease taken over after
 * expiring) stops writing.
 */
export class UploadLocker {
  /** This process's holder of each upload it holds, and what to call to make it let go. */
  private readonly held = new Map<string, { holder: string; release: RequestRelease }>();
  private readonly unsubscribe: () => void;
  private readonly timings: UploadLockerTimings;

  constructor(private readonly deps: { orm: Orm; bus: Bus; timings?: Partial<UploadLockerTimings> }) {
    this.timings = {
      leaseMs: LEASE_MS,
      renewEveryMs: RENEW_EVERY_MS,
      acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
      ...deps.timings,
    };
    this.unsubscribe = deps.bus.subscribe((message) => {
      if (message.kind !== 'upload_release') return;
      void this.held.get(message.uploadId)?.release();
    });
  }

  /**
   * The tus server's locker for requests of one tenant (upload rows are found under its row-level scope);
   * `uploadIdOf` reads the upload's id out of what the tus server locks (its store's id).
   */
  forTenant(tenantId: string, uploadIdOf: (lockId: string) => string = (id) => id): Locker {
    return { newLock: (lockId) => this.newLock(tenantId, uploadIdOf(lockId)) };
  }

  private newLock(tenantId: string, uploadId: string): Lock {
    const { orm, bus } = this.deps;
    const { leaseMs, renewEveryMs, acquireTimeoutMs } = this.timings;
    const holder = randomUUID();
    const take = () => inTenant(orm, tenantId, (scope) => takeUploadLease(scope, uploadId, holder, leaseMs));
    let renewal: NodeJS.Timeout | undefined;
    const held = this.held;
    return {
      async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
        const deadline = Date.now() + acquireTimeoutMs;
        let askedToRelease = false;
        let waitMs = 20;
        while (!(await take())) {
          if (!askedToRelease) {
            bus.publish({ kind: 'upload_release', uploadId });
            askedToRelease = true;
          }
          if (signal.aborted || Date.now() >= deadline) {
            throw new AppError('locked', 'another request is writing to this upload; try again');
          }
          await sleep(waitMs);
          waitMs = Math.min(250, waitMs * 2);
        }
        held.set(uploadId, { holder, release: requestRelease });
        renewal = setInterval(() => {
          take()
            .then((renewed) => {
              if (!renewed) void requestRelease();
            })
            .catch(() => void requestRelease());
        }, renewEveryMs);
        renewal.unref();
      },
      async unlock(): Promise<void> {
        clearInterval(renewal);
        if (held.get(uploadId)?.holder === holder) held.delete(uploadId);
        await inTenant(orm, tenantId, (scope) => releaseUploadLease(scope, uploadId, holder));
      },
    };
  }

  close(): void {
    this.unsubscribe();
    this.held.clear();
  }
}
