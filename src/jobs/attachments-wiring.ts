import type { FastifyBaseLogger } from 'fastify';
import type { AttachmentLimits } from '../config.ts';
import type { Orm } from '../db/client.ts';
import { AttachmentProcessor } from '../modules/attachments/attachment-processor.ts';
import { createAttachmentsService } from '../modules/attachments/attachments.service.ts';
import { createFileLinker, fileLinkKey } from '../modules/attachments/file-linker.ts';
import { StorageRemover } from '../modules/attachments/storage-remover.ts';
import type { Bus } from '../modules/events/events.bus.ts';
import type { EventLog } from '../modules/events/event-log.ts';
import { createDirectUploads } from '../modules/attachments/direct-uploads.ts';
import { createResumableUploads } from '../modules/attachments/resumable-uploads.ts';
import { UploadLocker } from '../modules/attachments/upload-locker.ts';
import type { ObjectStorage } from '../storage/object-storage.ts';
import type { BackgroundWork } from './background-work.ts';

/**
 * The attachments service and its part of the background work (docs/ATTACHMENTS.md): processing uploaded
 * images and removing stored bytes, both senders of due work, woken when an upload or a removal is made;
 * and the resumable (tus) uploads, which end in attachments.
 */
export function createAttachments(deps: {
  orm: Orm;
  background: BackgroundWork;
  events: EventLog;
  bus: Bus;
  storage: ObjectStorage;
  limits: AttachmentLimits;
  serverKey: string;
  log: FastifyBaseLogger;
}) {
  const { orm, background, storage, limits, log } = deps;
  const linkKey = fileLinkKey(deps.serverKey);
  const links = createFileLinker(linkKey, limits.linkTtlSeconds);
  const processor = new AttachmentProcessor({
    orm,
    storage,
    events: deps.events,
    links,
    maxImagePixels: limits.maxImagePixels,
    maxFileBytes: limits.maxFileBytes,
    onFailure: (error, attachment) =>
      log.warn({ err: error, ...attachment }, 'background work: processing an attachment failed'),
  });
  const remover = new StorageRemover({
    orm,
    storage,
    onFailure: (error, key) =>
      log.warn({ err: error, key }, 'background work: removing a stored object failed'),
  });
  background.addSender({ name: 'attachments', runOnce: (limit) => processor.runOnce(limit) });
  background.addSender({ name: 'storage-removals', runOnce: (limit) => remover.runOnce(limit) });
  const attachments = createAttachmentsService({
    orm,
    storage,
    limits,
    links,
    linkKey,
    wake: () => background.wake(),
  });
  // Resumable uploads end in the same attachments; their write locks are shared over the bus.
  const locker = new UploadLocker({ orm, bus: deps.bus });
  const uploads = createResumableUploads({ orm, storage, limits, attachments, locker });
  const direct = createDirectUploads({ orm, storage, limits, attachments });
  return { attachments, links, uploads, direct, close: () => locker.close() };
}
