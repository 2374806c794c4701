import type { FastifyBaseLogger } from 'fastify';
import type { Orm } from '../db/client.ts';
import { purgeUnsentAttachments } from '../modules/attachments/attachments.repository.ts';
import { purgeExpiredUploads } from '../modules/attachments/uploads.repository.ts';
import { purgeEvents } from '../modules/events/events.repository.ts';
import { purgePushDeliveries } from '../modules/push/push.repository.ts';
import { purgeWebhookDeliveries } from '../modules/webhooks/webhooks.repository.ts';

const EVERY_MS = 60 * 60 * 1000;

/** Rows one purge statement deletes at most; the hourly run repeats it while it finds that many. */
const UNSENT_BATCH = 500;

/** Runs a batched purge until a batch comes back short; how many it deleted in all. */
async function purgeInBatches(purge: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const purged = await purge(UNSENT_BATCH);
    total += purged;
    if (purged < UNSENT_BATCH) return total;
  }
}

/**
 * Deletes events, webhook deliveries done with and pushes given up on, past the retention, uploads never
 * sent within a day and resumable uploads past their expiry (their bytes then removed by background work), once an hour (and once shortly after start). Every process runs it; the deletes are idempotent, so several at once only repeat work.
 * Returns the stop function.
 */
export function scheduleEventRetention(orm: Orm, retentionDays: number, log: FastifyBaseLogger): () => void {
  const run = () => {
    purgeEvents(orm, retentionDays)
      .then((purged) => {
        if (purged > 0) log.info({ purged, retentionDays }, 'purged expired events');
      })
      .catch((error: unknown) => log.warn({ err: error }, 'purging expired events failed'));
    purgeWebhookDeliveries(orm, retentionDays)
      .then((purged) => {
        if (purged > 0) log.info({ purged, retentionDays }, 'purged old webhook deliveries');
      })
      .catch((error: unknown) => log.warn({ err: error }, 'purging old webhook deliveries failed'));
    purgePushDeliveries(orm, retentionDays)
      .then((purged) => {
        if (purged > 0) log.info({ purged, retentionDays }, 'purged failed pushes');
      })
      .catch((error: unknown) => log.warn({ err: error }, 'purging failed pushes failed'));
    purgeInBatches((limit) => purgeUnsentAttachments(orm, limit))
      .then((purged) => {
        if (purged > 0) log.info({ purged }, 'removed uploads never sent');
      })
      .catch((error: unknown) => log.warn({ err: error }, 'removing uploads never sent failed'));
    purgeInBatches((limit) => purgeExpiredUploads(orm, limit))
      .then((purged) => {
        if (purged > 0) log.info({ purged }, 'removed expired resumable and direct uploads');
      })
      .catch((error: unknown) => log.warn({ err: error }, 'removing expired uploads failed'));
  };
  const first = setTimeout(run, 30_000);
  const every = setInterval(run, EVERY_MS);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
