import { pipeline, Transform, Writable, type Readable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import type { AttachmentLimits } from '../../config.ts';
import type { Orm } from '../../db/client.ts';
import type { AttachmentFacts, StoredRendition } from '../../db/schema/attachments.ts';
import { inTenant, inTenantAsUser, type TenantScope } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { AppError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { isProcessableImage, sniffContentType, SNIFF_BYTES } from '../../media/content-type.ts';
import { mediaDurationMs } from '../../media/duration.ts';
import { contentDisposition, hasUnsafeNameCharacters, MAX_FILE_NAME_LENGTH } from '../../media/file-names.ts';
import {
  ObjectNotFoundError,
  ObjectTooLargeError,
  type ObjectStorage,
} from '../../storage/object-storage.ts';
import { ObjectBodyMeter } from '../../storage/object-body-meter.ts';
import { assertAllowed } from '../access/permissions.ts';
import { loadVisible } from '../access/visibility.ts';
import { verifyFileLink } from './attachment-links.ts';
import {
  deleteAttachment,
  findAttachment,
  insertAttachment,
  releaseReservation,
  reserveStorage,
  storageUsage,
  type AttachmentRow,
} from './attachments.repository.ts';
import { toAttachmentFacts, toAttachmentView } from './attachments.presenter.ts';
import type { FileLinker } from './file-linker.ts';
import { uploadKey } from './attachment-keys.ts';

/** One part of a `multipart/form-data` upload, as the route hands it over (the service knows no Fastify). */
export type UploadPart =
  | { kind: 'field'; name: string; value: string }
  | { kind: 'file'; field: string; fileName: string; stream: Readable };

/** A file on its way to becoming an attachment, however it was uploaded. */
export interface FileToStore {
  /** The attachment's id when it has one already (a resumable upload's); a new one when absent. */
  id?: string;
  stream: Readable;
  name: string;
  /** The quota to reserve before the first byte, or `held` when the upload reserved it under its id. */
  reserveBytes: number | 'held';
  /** Exactly these bytes must arrive (a resumable upload's declared length). */
  expectedBytes?: number;
  /** Runs in the transaction that records the attachment (a resumable upload marks itself finished). */
  alsoInTransaction?: (scope: TenantScope) => Promise<void>;
}

/** Bytes a client put into storage itself (a presigned PUT), under the key the attachment will keep. */
export type DirectUpload = Pick<FileToStore, 'name' | 'alsoInTransaction'> & {
  id: string;
  key: string;
  expectedBytes: number;
};

/** Room for a multipart body's boundaries and part headers around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** How long a reservation outlives the upload that took it, if its process dies. */
const RESERVATION_TTL_MS = 60 * 60 * 1000;

const invalid = (path: string, message: string) =>
  new AppError('validation_failed', message, [{ path, message }]);

/**
 * A file name as given, refused when it could be read as a path or hides characters: a name is shown to
 * other users and offered to their browsers when they download, so it must be what it looks like.
 */
export function checkFileName(name: string, path: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0) throw invalid(path, 'the file name is empty');
  if (Array.from(trimmed).length > MAX_FILE_NAME_LENGTH)
    throw invalid(path, `the file name is longer than ${MAX_FILE_NAME_LENGTH} characters`);
  if (/[/\\]/.test(trimmed)) throw invalid(path, 'the file name holds a path separator');
  if (hasUnsafeNameCharacters(trimmed)) throw invalid(path, 'the file name holds control characters');
  if (trimmed === '.' || trimmed === '..') throw invalid(path, 'the file name is a path');
  return trimmed;
}

/** A pass-through that keeps the first `bytes` bytes it sees, for sniffing the type on the way to storage. */
function headKeeper(bytes: number): { stream: Transform; head: () => Buffer } {
  const chunks: Buffer[] = [];
  let kept = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (kept < bytes) {
        const piece = chunk.subarray(0, bytes - kept);
        chunks.push(piece);
        kept += piece.length;
      }
      callback(null, chunk);
    },
  });
  return { stream, head: () => Buffer.concat(chunks) };
}

export interface AttachmentsServiceDeps {
  orm: Orm;
  storage: ObjectStorage;
  limits: AttachmentLimits;
  links: FileLinker;
  /** The key links are verified with (`fileLinkKey`). */
  linkKey: Uint8Array;
  /** Tells background work that an attachment waits to be processed. */
  wake: () => void;
}

/** What a download link opens: the object to serve and how, or where to redirect (S3). */
export type FileToServe =
  | {
      kind: 'object';
      key: string;
      size: number;
      sha256: string;
      contentType: string;
      fileName: string;
      maxAgeSeconds: number;
    }
  | { kind: 'redirect'; url: string };

/** Attachments (docs/ATTACHMENTS.md): uploads, reads, removal before sending, and the links' files. */
export function createAttachmentsService(deps: AttachmentsServiceDeps) {
  const { orm, storage, limits, links } = deps;

  /** An attachment the user may see: its uploader, or a reader of the conversation it was sent to. */
  async function loadVisibleAttachment(scope: TenantScope, id: string, userId: string) {
    const row = await findAttachment(scope, id);
    if (!row) throw notFound('attachment');
    if (row.conversationId === null) {
      if (row.uploaderId !== userId) throw notFound('attachment');
      return row;
    }
    const { role } = await loadVisible(scope, row.conversationId, userId).catch((error: unknown) => {
      throw error instanceof AppError && error.code === 'not_found' ? notFound('attachment') : error;
    });
    assertAllowed(role, 'read');
    return row;
  }

  const view = (tenantId: string, row: AttachmentRow) =>
    toAttachmentView(tenantId, row.conversationId, toAttachmentFacts(row), links);

  /**
   * Stores one file: reserved quota first, streamed to storage, typed by its bytes, recorded. Every way of
   * uploading ends here, so every file gets the same checks.
   */
  async function storeUpload(ctx: TenantContext, userId: string, file: FileToStore): Promise<AttachmentRow> {
    const id = file.id ?? newId();
    // The reservation bears the attachment's id: `parley attachments gc` leaves an upload under way alone.
    const reservationId = id;
    if (file.reserveBytes === 'held') {
      return recordUpload(ctx, userId, { ...file, id });
    }
    // The client's body failing (cut short, malformed) is the client's error; storage failing is ours. The
    // body can fail while the reservation is taken, before it is piped anywhere: watched from the start.
    let clientError: unknown;
    const noteClientError = (error: unknown) => {
      clientError ??= error;
    };
    file.stream.on('error', noteClientError);
    const reserveBytes = file.reserveBytes;
    const reservation = await inTenant(orm, ctx.tenantId, (scope) =>
      reserveStorage(scope, {
        id: reservationId,
        bytes: reserveBytes,
        expiresInMs: RESERVATION_TTL_MS,
        defaultQuotaBytes: limits.defaultQuotaBytes,
      }),
    );
    if (!reservation.reserved) {
      file.stream.resume();
      throw new AppError(
        'quota_exceeded',
        `the tenant's storage quota has ${reservation.freeBytes} bytes free, fewer than this upload may need`,
      );
    }
    // Released in the transaction that records the attachment, or here when the upload fails.
    let isReleased = false;
    try {
      const row = await recordUpload(ctx, userId, { ...file, id }, () => clientError);
      isReleased = true;
      return row;
    } finally {
      if (!isReleased) {
        await inTenant(orm, ctx.tenantId, (scope) => releaseReservation(scope, reservationId)).catch(
          () => undefined,
        );
      }
    }
  }

  /**
   * Streams a file whose quota is reserved (under its id) into storage, and records the attachment in the
   * transaction that releases the reservation. With `clientError`, the stream is a client's body: one it
   * cut short or broke is the client's 400; otherwise (bytes read back from storage) a failure is ours.
   */
  async function recordUpload(
    ctx: TenantContext,
    userId: string,
    file: FileToStore & { id: string },
    clientError?: () => unknown,
  ): Promise<AttachmentRow> {
    const { id } = file;
    const key = uploadKey(ctx.tenantId, id);
    const sniffer = headKeeper(SNIFF_BYTES);
    let sourceError: unknown;
    // pipeline, not pipe: a body that ended early or failed (even before this) fails what storage reads.
    pipeline(file.stream, sniffer.stream, (error) => {
      if (error) sourceError ??= error;
    });
    let stored;
    try {
      stored = await storage.put(key, sniffer.stream, { maxBytes: limits.maxFileBytes });
    } catch (error) {
      if (error instanceof ObjectTooLargeError) {
        throw new AppError('payload_too_large', `a file may have at most ${limits.maxFileBytes} bytes`);
      }
      if (clientError !== undefined && (clientError() ?? sourceError) !== undefined) {
        throw invalid('/body/file', 'the upload was cut short or malformed');
      }
      throw error;
    }
    if (stored.size === 0) {
      await storage.delete(key);
      throw invalid('/body/file', 'the file is empty');
    }
    if (file.expectedBytes !== undefined && stored.size !== file.expectedBytes) {
      await storage.delete(key);
      throw invalid(
        '/body/file',
        `the file has ${stored.size} bytes, not the ${file.expectedBytes} declared`,
      );
    }
    try {
      return await recordStored(ctx, userId, { ...file, key, ...stored, head: sniffer.head() });
    } catch (error) {
      await storage.delete(key).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Records bytes that are in storage under `key` as the attachment `file.id`, typed by their first bytes
   * (`head`), in the transaction that releases the upload's reservation.
   */
  async function recordStored(
    ctx: TenantContext,
    userId: string,
    file: Pick<FileToStore, 'name' | 'alsoInTransaction'> & {
      id: string;
      key: string;
      size: number;
      sha256: string;
      head: Buffer;
    },
  ): Promise<AttachmentRow> {
    const { id, key, size, sha256 } = file;
    const contentType = await sniffContentType(file.head);
    const isImage = isProcessableImage(contentType);
    // Audio and video: their length, from the stored bytes' headers (read back; the upload streamed past).
    const durationMs = await mediaDurationMs(() => storage.get(key), contentType, size);
    const original: StoredRendition = {
      rendition: 'original',
      key,
      size,
      sha256,
      contentType,
      width: null,
      height: null,
    };
    return inTenant(orm, ctx.tenantId, async (scope) => {
      await releaseReservation(scope, id);
      await file.alsoInTransaction?.(scope);
      return insertAttachment(scope, {
        id,
        uploaderId: userId,
        name: file.name,
        contentType,
        size,
        sha256,
        durationMs: durationMs ?? null,
        status: isImage ? 'pending' : 'ready',
        uploadKey: key,
        // An image is served only once processing made its metadata-free original; any other file as is.
        renditions: isImage ? [] : [original],
        storedBytes: size,
        nextAttemptAt: isImage ? new Date() : null,
      });
    });
  }

  /**
   * Bytes a client put straight into storage (a presigned PUT), read back once to count, hash and type
   * them, and recorded where they are: never copied. Exactly `expectedBytes` must be there; otherwise what
   * is there is removed (the client may PUT again while its link lasts).
   */
  async function recordDirectUpload(
    ctx: TenantContext,
    userId: string,
    file: DirectUpload,
  ): Promise<AttachmentRow> {
    const nothingYet = () =>
      new AppError('conflict', 'nothing was uploaded: PUT the file to the presigned URL first');
    /** `bytes`: what the object has, as far as it was read. */
    const wrongSize = async (bytes: string) => {
      await storage.delete(file.key);
      return invalid(
        '/body',
        `the uploaded file has ${bytes} bytes, not the ${file.expectedBytes} declared; PUT it again`,
      );
    };
    // The size first: a client that PUT far more than it declared is refused without reading it all.
    const found = await storage.stat(file.key);
    if (found === undefined) throw nothingYet();
    if (found.size !== file.expectedBytes) throw await wrongSize(String(found.size));
    let body: Readable;
    try {
      body = await storage.get(file.key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) throw nothingYet();
      throw error;
    }
    // Counted and hashed as storage counts what it writes; more than declared stops the read.
    const sniffer = headKeeper(SNIFF_BYTES);
    const meter = new ObjectBodyMeter(file.expectedBytes);
    const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
    try {
      await pipelineAsync(body, meter, sniffer.stream, discard);
    } catch (error) {
      // Replaced by a larger object between the stat and the read.
      if (meter.exceeded) throw await wrongSize(`more than ${file.expectedBytes}`);
      throw error;
    }
    const stored = meter.stored();
    // Replaced by a smaller one.
    if (stored.size !== file.expectedBytes) throw await wrongSize(String(stored.size));
    return recordStored(ctx, userId, { ...file, ...stored, head: sniffer.head() });
  }

  return {
    /**
     * `POST /v1/attachments`: the one `file` part of a multipart body (and an optional `name` field before
     * it), streamed to storage. A second file, or none, is refused, and what was stored of the first is
     * removed. `declaredBytes` (the request's Content-Length) bounds the quota reserved and refuses at
     * once a body larger than a file may be.
     */
    async upload(
      ctx: TenantContext,
      request: { parts: AsyncIterable<UploadPart>; declaredBytes: number | undefined },
    ) {
      if (
        request.declaredBytes !== undefined &&
        request.declaredBytes > limits.maxFileBytes + MULTIPART_OVERHEAD_BYTES
      ) {
        throw new AppError('payload_too_large', `a file may have at most ${limits.maxFileBytes} bytes`);
      }
      const reserveBytes = Math.min(limits.maxFileBytes, request.declaredBytes ?? limits.maxFileBytes);
      const userId = actingUserId(ctx);
      let name: string | undefined;
      let row: AttachmentRow | undefined;
      try {
        for await (const part of request.parts) {
          if (part.kind === 'field') {
            if (part.name === 'name') name = checkFileName(part.value, '/body/name');
            continue;
          }
          if (part.field !== 'file') {
            part.stream.resume();
            throw invalid(`/body/${part.field}`, 'the only file part is "file"');
          }
          if (row !== undefined) {
            part.stream.resume();
            throw invalid('/body/file', 'one file per upload');
          }
          const fileName = name ?? checkFileName(part.fileName, '/body/file');
          row = await storeUpload(ctx, userId, { stream: part.stream, name: fileName, reserveBytes });
        }
      } catch (error) {
        if (row !== undefined) {
          const stored = row;
          await inTenant(orm, ctx.tenantId, (scope) => deleteAttachment(scope, stored.id));
        }
        throw error;
      }
      if (row === undefined) throw invalid('/body/file', 'no file part "file"');
      if (row.status === 'pending') deps.wake();
      return view(ctx.tenantId, row);
    },

    /**
     * The bytes of a resumable or direct upload, all arrived: stored and recorded with the same checks as
     * `POST /v1/attachments`, under the upload's id and reservation (`reserveBytes: 'held'`).
     */
    async storeFinishedUpload(ctx: TenantContext, userId: string, file: FileToStore & { id: string }) {
      const row = await storeUpload(ctx, userId, file);
      if (row.status === 'pending') deps.wake();
      return view(ctx.tenantId, row);
    },

    /** A presigned PUT's bytes, in storage already: recorded where they are, with the same checks. */
    async storeDirectUpload(ctx: TenantContext, userId: string, file: DirectUpload) {
      const row = await recordDirectUpload(ctx, userId, file);
      if (row.status === 'pending') deps.wake();
      return view(ctx.tenantId, row);
    },

    /** `GET /v1/attachments/{id}`: with fresh links. */
    get(ctx: TenantContext, id: string) {
      return inTenantAsUser(orm, ctx, async (scope, userId) =>
        view(ctx.tenantId, await loadVisibleAttachment(scope, id, userId)),
      );
    },

    /** `DELETE /v1/attachments/{id}`: its uploader, before it is sent; its bytes are removed after. */
    async remove(ctx: TenantContext, id: string) {
      await inTenantAsUser(orm, ctx, async (scope, userId) => {
        const row = await findAttachment(scope, id, { forUpdate: true });
        if (!row || (row.conversationId === null && row.uploaderId !== userId)) throw notFound('attachment');
        if (row.messageId !== null) {
          await loadVisibleAttachment(scope, id, userId);
          throw new AppError('conflict', 'a sent attachment goes with its message: delete the message');
        }
        await deleteAttachment(scope, id);
      });
      deps.wake();
    },

    /** What a signed link opens: 403 for a link that is not one of ours, 410 once expired, 404 when gone. */
    async openFile(token: string, now: Date = new Date()): Promise<FileToServe> {
      const link = verifyFileLink(deps.linkKey, token, now);
      const row = await inTenant(orm, link.tenantId, (scope) => findAttachment(scope, link.attachmentId));
      const rendition = row?.renditions.find((candidate) => candidate.rendition === link.rendition);
      if (!row || !rendition) throw notFound('file');
      const maxAgeSeconds = Math.max(0, Math.floor((link.expiresAt.getTime() - now.getTime()) / 1000));
      const fileName = rendition.rendition === 'original' ? row.name : thumbnailName(row.name, rendition);
      if (storage.presignGet) {
        // Always a download from the bucket's origin: S3 cannot add nosniff or a sandbox.
        const disposition = contentDisposition(fileName, false);
        return {
          kind: 'redirect',
          url: await storage.presignGet(rendition.key, {
            expiresInSeconds: Math.max(1, maxAgeSeconds),
            contentType: rendition.contentType,
            contentDisposition: disposition,
          }),
        };
      }
      return {
        kind: 'object',
        key: rendition.key,
        size: rendition.size,
        sha256: rendition.sha256,
        contentType: rendition.contentType,
        fileName,
        maxAgeSeconds,
      };
    },

    /** The tenant's storage use (`GET /v1/admin/tenants/{id}/usage`). */
    async usage(tenantId: string) {
      const usage = await inTenant(orm, tenantId, (scope) => storageUsage(scope, limits.defaultQuotaBytes));
      if (!usage) throw notFound('tenant');
      return {
        storage_bytes: usage.storageBytes,
        storage_quota_bytes: usage.quotaBytes,
        attachments: usage.attachments,
      };
    },
  };
}

/** A thumbnail's download name: the original's, with what it is. */
function thumbnailName(name: string, rendition: StoredRendition): string {
  const base = name.replace(/\.[^.]*$/, '');
  return `${base}-${rendition.width ?? 0}x${rendition.height ?? 0}.webp`;
}

/**
 * Checks the attachments a send names and makes what the message keeps of them: each must exist, be the
 * sender's, and not be sent already (or rejected). Runs in the send's transaction, the rows locked, so two
 * sends cannot both bind one attachment.
 */
export function attachmentFactsForSend(
  rows: AttachmentRow[],
  ids: string[],
  senderId: string,
): AttachmentFacts[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id, index) => {
    const row = byId.get(id);
    const path = `/body/attachment_ids/${index}`;
    if (!row || row.uploaderId !== senderId) throw invalid(path, 'no such attachment of the sender');
    if (row.messageId !== null) throw invalid(path, 'the attachment was sent already');
    if (row.status === 'rejected')
      throw invalid(path, `the attachment was rejected: ${row.rejectedReason ?? ''}`);
    return toAttachmentFacts(row);
  });
}

export type AttachmentsService = ReturnType<typeof createAttachmentsService>;
