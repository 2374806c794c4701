import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Orm } from '../../db/client.ts';
import type { StoredRendition } from '../../db/schema/attachments.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { ImageRejectedError, renderImage } from '../../media/images.ts';
import { ObjectTooLargeError, type ObjectStorage } from '../../storage/object-storage.ts';
import { lockConversation } from '../conversations/conversations.repository.ts';
import type { EventLog } from '../events/event-log.ts';
import {
  addStoredBytes,
  claimAttachments,
  findAttachment,
  queueStorageRemovals,
  updateMessageAttachment,
  updateProcessedAttachment,
  type AttachmentRow,
} from './attachments.repository.ts';
import { toAttachmentFacts, toAttachmentView } from './attachments.presenter.ts';
import { renditionKey } from './attachment-keys.ts';
import type { FileLinker } from './file-linker.ts';

/** How long a claimed attachment is this process's before another may take it over (it died). */
export const PROCESSING_LEASE_SECONDS = 300;
/** Attachments one pass processes, one after the other: decoding images is work for a whole core. */
const PROCESS_BATCH = 2;
/** Attempts before an attachment that keeps failing (storage down, a bug) is rejected. */
export const MAX_PROCESSING_ATTEMPTS = 6;
/** The wait after a failed attempt, by attempts made: 10 s, 1 min, 5 min, 30 min, 2 h. */
const RETRY_AFTER_SECONDS = [10, 60, 300, 1800, 7200];

/** The outcome of processing, as it is written back. */
type Outcome =
  | { kind: 'ready'; width: number; height: number; renditions: StoredRendition[] }
  | { kind: 'rejected'; reason: string };

export interface AttachmentProcessorOptions {
  orm: Orm;
  storage: ObjectStorage;
  events: EventLog;
  links: FileLinker;
  maxImagePixels: number;
  /** The most bytes a file may have (PARLEY_ATTACHMENT_MAX_BYTES): a re-encoded original too. */
  maxFileBytes: number;
  /** Reports a failed attempt (logged by the wiring). */
  onFailure: (error: unknown, attachment: { tenantId: string; id: string }) => void;
}

/**
 * Processes uploaded images as background work (docs/ATTACHMENTS.md): the metadata-free original (EXIF
 * orientation applied), thumbnails of 256 and 1024 px, width and height; or a rejection (too many pixels,
 * unreadable). The upload's own bytes, which may hold a location, are removed once replaced. A sent
 * attachment's message is updated and an `attachment.updated` event tells its conversation.
 */
export class AttachmentProcessor {
  constructor(private readonly options: AttachmentProcessorOptions) {}

  /** One pass: claims due attachments and processes them; how many it claimed. */
  async runOnce(limit: number): Promise<number> {
    const claims = await claimAttachments(
      this.options.orm,
      Math.min(limit, PROCESS_BATCH),
      PROCESSING_LEASE_SECONDS,
    );
    for (const claim of claims) {
      try {
        await this.process(claim.tenantId, claim.id);
      } catch (error) {
        this.options.onFailure(error, claim);
        await this.postpone(claim.tenantId, claim.id, error).catch((again: unknown) =>
          this.options.onFailure(again, claim),
        );
      }
    }
    return claims.length;
  }

  private async process(tenantId: string, id: string): Promise<void> {
    const { orm, storage } = this.options;
    const row = await inTenant(orm, tenantId, (scope) => findAttachment(scope, id));
    if (!row || row.status !== 'pending' || row.uploadKey === null) return;
    if (row.attempts > MAX_PROCESSING_ATTEMPTS) {
      await this.finish(row, { kind: 'rejected', reason: 'could not be processed' });
      return;
    }
    const workDir = await mkdtemp(path.join(tmpdir(), 'parley-attachment-'));
    const made: string[] = [];
    try {
      const input = path.join(workDir, 'input');
      await pipeline(await storage.get(row.uploadKey), createWriteStream(input));
      let outcome: Outcome;
      try {
        const originalOut = path.join(workDir, 'original');
        const rendered = await renderImage(input, { maxPixels: this.options.maxImagePixels, originalOut });
        const renditions: StoredRendition[] = [];
        // Keys of this attempt's own (renditionKey): a removal queued by an attempt that failed, or
        // overran its lease, never names what another attempt made and the row now names.
        const originalKey = renditionKey(tenantId, id, 'original', row.attempts);
        made.push(originalKey);
        // Re-encoding may grow a file (a palette PNG made truecolour): no bigger than an upload may be.
        const original = await storage.put(originalKey, createReadStream(originalOut), {
          maxBytes: this.options.maxFileBytes,
          contentType: rendered.original.contentType,
        });
        renditions.push({
          rendition: 'original',
          key: originalKey,
          size: original.size,
          sha256: original.sha256,
          contentType: rendered.original.contentType,
          width: rendered.width,
          height: rendered.height,
        });
        for (const thumbnail of rendered.thumbnails) {
          const rendition = thumbnail.longSide === 256 ? 'thumb256' : 'thumb1024';
          const key = renditionKey(tenantId, id, rendition, row.attempts);
          made.push(key);
          const stored = await storage.put(key, Readable.from([thumbnail.data]), {
            maxBytes: Number.MAX_SAFE_INTEGER,
            contentType: thumbnail.contentType,
          });
          renditions.push({
            rendition,
            key,
            size: stored.size,
            sha256: stored.sha256,
            contentType: thumbnail.contentType,
            width: thumbnail.width,
            height: thumbnail.height,
          });
        }
        outcome = { kind: 'ready', width: rendered.width, height: rendered.height, renditions };
      } catch (error: unknown) {
        if (error instanceof ObjectTooLargeError) {
          outcome = { kind: 'rejected', reason: 'the image is larger than a file may be once re-encoded' };
        } else if (error instanceof ImageRejectedError) {
          outcome = {
            kind: 'rejected',
            reason:
              error.reason === 'too_many_pixels'
                ? 'the image has too many pixels'
                : 'the image is unreadable',
          };
        } else {
          throw error;
        }
      }
      await this.finish(row, outcome, made);
    } catch (error) {
      // Objects made by a failed attempt are not the attachment's: removed, the next attempt makes them anew.
      await inTenant(orm, tenantId, (scope) => queueStorageRemovals(scope, made)).catch(() => undefined);
      throw error;
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Writes the outcome, in one transaction with the message's copy, the usage and the event. Locks in the
   * order every writer of a sent attachment follows (docs/ATTACHMENTS.md): its conversation, then the
   * attachment (a message deletion takes the conversation, the message, then its attachments). If the
   * attachment was sent between the first read and its lock, the transaction is left and tried again.
   */
  private async finish(row: AttachmentRow, outcome: Outcome, made: string[] = []): Promise<void> {
    for (let tries = 0; tries < 3; tries += 1) {
      if (await this.finishOnce(row, outcome, made)) return;
    }
    throw new Error('the attachment was sent while its processing finished, three times running');
  }

  private async finishOnce(row: AttachmentRow, outcome: Outcome, made: string[]): Promise<boolean> {
    const { orm, events, links } = this.options;
    return inTenant(orm, row.tenantId, async (scope) => {
      const seen = await findAttachment(scope, row.id);
      if (seen?.conversationId != null) await lockConversation(scope, seen.conversationId);
      const current = await findAttachment(scope, row.id, { forUpdate: true });
      if (current && current.conversationId !== (seen?.conversationId ?? null)) return false;
      if (!current || current.status !== 'pending') {
        // Deleted (or finished by an attempt that overran its lease) meanwhile: what this attempt stored,
        // under keys of its own, is nobody's.
        const named = new Set(current?.renditions.map((rendition) => rendition.key) ?? []);
        await queueStorageRemovals(
          scope,
          made.filter((key) => !named.has(key)),
        );
        return true;
      }
      const storedBytes =
        outcome.kind === 'ready' ? outcome.renditions.reduce((sum, rendition) => sum + rendition.size, 0) : 0;
      const original = outcome.kind === 'ready' ? outcome.renditions[0] : undefined;
      const updated = await updateProcessedAttachment(scope, row.id, {
        status: outcome.kind,
        rejectedReason: outcome.kind === 'rejected' ? outcome.reason : null,
        ...(original === undefined
          ? {}
          : {
              contentType: original.contentType,
              size: original.size,
              sha256: original.sha256,
              width: original.width,
              height: original.height,
            }),
        renditions: outcome.kind === 'ready' ? outcome.renditions : [],
        uploadKey: null,
        storedBytes,
        nextAttemptAt: null,
        lastError: null,
      });
      // The upload's bytes (with whatever metadata they held) are replaced, or refused: removed. So is
      // anything this attempt stored that the outcome does not keep.
      const kept = new Set(
        outcome.kind === 'ready' ? outcome.renditions.map((rendition) => rendition.key) : [],
      );
      await queueStorageRemovals(scope, [
        ...(current.uploadKey === null ? [] : [current.uploadKey]),
        ...made.filter((key) => !kept.has(key)),
      ]);
      await addStoredBytes(scope, storedBytes - current.storedBytes);
      if (!updated || updated.messageId === null || updated.conversationId === null) return true;
      const facts = toAttachmentFacts(updated);
      const message = await updateMessageAttachment(scope, updated.messageId, facts);
      if (!message) return true;
      await events.record(scope, message.conversationId, [
        {
          type: 'attachment.updated',
          seq: message.seq,
          data: {
            message_id: updated.messageId,
            attachment: toAttachmentView(row.tenantId, message.conversationId, facts, links),
          },
        },
      ]);
      return true;
    });
  }

  /** A failed attempt: tried again later, after a wait that grows with the attempts. */
  private async postpone(tenantId: string, id: string, error: unknown): Promise<void> {
    await inTenant(this.options.orm, tenantId, async (scope) => {
      const row = await findAttachment(scope, id, { forUpdate: true });
      if (!row || row.status !== 'pending') return;
      const wait = RETRY_AFTER_SECONDS[Math.min(row.attempts, RETRY_AFTER_SECONDS.length) - 1] ?? 10;
      await updateProcessedAttachment(scope, id, {
        nextAttemptAt: new Date(Date.now() + wait * 1000),
        lastError: error instanceof Error ? error.message.slice(0, 500) : 'failed',
      });
    });
  }
}
