import { PassThrough, Readable } from 'node:stream';
import { Server } from '@tus/server';
import { TUS_RESUMABLE, type Upload } from '@tus/utils';
import type { AttachmentLimits } from '../../config.ts';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { AppError, ERROR_CODES, notFound, type ErrorCode } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { ObjectStorage } from '../../storage/object-storage.ts';
import { tusUploadKey, tusUploadOfKey } from './attachment-keys.ts';
import { queueStorageRemovals, releaseReservation, reserveStorage } from './attachments.repository.ts';
import { checkFileName, type AttachmentsService } from './attachments.service.ts';
import {
  CHECKSUM_ALGORITHMS,
  parseUploadChecksum,
  verifyBody,
  type VerifiedBody,
} from './upload-checksum.ts';
import type { UploadLocker } from './upload-locker.ts';
import {
  deleteUpload,
  findUpload,
  insertUpload,
  markUploadFinished,
  type UploadRow,
} from './uploads.repository.ts';

/** Where the tus endpoints are (docs/ATTACHMENTS.md, "Resumable and direct uploads"). */
export const UPLOADS_PATH = '/v1/uploads';
/** How long an upload may take from its creation; then it is removed and its quota given back. */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;
/** The tus extensions Parley offers: the store's, checksums (checked here) and expiry (Parley's own rows). */
const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'termination', 'checksum', 'expiration'];

/** A request to the tus endpoints as the route hands it over (the service knows no Fastify). */
export interface TusRequest {
  method: 'OPTIONS' | 'POST' | 'HEAD' | 'PATCH' | 'DELETE';
  /** The path and query (`/v1/uploads/<id>`). */
  url: string;
  headers: Headers;
  /** The body, for POST and PATCH. */
  body?: Readable;
  /** The caller; absent for OPTIONS (discovery needs no credentials). */
  ctx?: TenantContext;
}

/** What to answer: the tus server's answer, or Parley's own for a finished upload. */
export interface TusResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** What a request carries through the tus server's hooks: who asks, and what failed inside. */
interface RequestState {
  ctx: TenantContext;
  userId: string;
  /** The id a creation names its upload with (the attachment's to be). */
  newUploadId: string;
  /** An error thrown inside the tus server (a hook, the locker, the store), answered by the route. */
  failure?: unknown;
}

/** tus's own errors are `{ status_code, body }`; their statuses, as Parley's codes. */
const CODE_OF_TUS_STATUS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  // tus answers 403 for a missing Upload-Offset or Content-Type: a malformed request, not a refusal.
  403: 'validation_failed',
  404: 'not_found',
  409: 'conflict',
  410: 'gone',
  412: 'precondition_failed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  501: 'validation_failed',
};

const isTusError = (error: unknown): error is { status_code: number; body: string } =>
  typeof error === 'object' &&
  error !== null &&
  typeof (error as { status_code?: unknown }).status_code === 'number' &&
  !(error instanceof Error);

/**
 * A request body that ends, rather than fails, when the client goes away mid-request: the tus store then
 * keeps what arrived, and the client resumes from there (what tus is for).
 */
function keepWhatArrives(body: Readable): Readable {
  const kept = new PassThrough();
  body.pipe(kept);
  const endEarly = () => {
    if (!kept.writableEnded) {
      body.unpipe(kept);
      kept.end();
    }
  };
  body.once('error', endEarly);
  body.once('close', endEarly);
  return kept;
}

/**
 * Resumable uploads over tus 1.0 at /v1/uploads (docs/ATTACHMENTS.md): `@tus/server` speaks the protocol and
 * writes through the storage backend's tus store (files on the disk, multipart uploads in S3); Parley owns
 * the rest. A creation is checked like any upload (its name, the per-file limit, the quota, reserved for the
 * whole declared length before a byte is accepted) and recorded as a row of `uploads`, whose id is the
 * attachment's to be; HEAD, PATCH and DELETE find that row first (another user's or tenant's upload is 404,
 * an expired one 410). Writes to one upload are serialized across processes by `UploadLocker`. A body with
 * `Upload-Checksum` is verified before the store sees it (460 on a mismatch). When the last byte arrives,
 * the bytes become an attachment through the same path as `POST /v1/attachments`, and the upload's own copy
 * is queued for removal.
 */
export function createResumableUploads(deps: {
  orm: Orm;
  storage: ObjectStorage;
  limits: AttachmentLimits;
  attachments: AttachmentsService;
  locker: UploadLocker;
}) {
  const { orm, limits, locker } = deps;
  const resumable = deps.storage.resumable();
  // Parley needs the length up front (the quota is reserved for it), and expiry is its own (the rows).
  resumable.store.extensions = ['creation', 'creation-with-upload', 'termination'];
  const states = new WeakMap<Request, RequestState>();
  const stateOf = (request: Request): RequestState => {
    const state = states.get(request);
    if (state === undefined) throw new Error('a tus request reached a hook without its state');
    return state;
  };
  const uploadIdOfStoreId = (storeId: string) => tusUploadOfKey(resumable.keyOfId(storeId) ?? '');

  const server = new Server({
    path: UPLOADS_PATH,
    datastore: resumable.store,
    maxSize: limits.maxFileBytes,
    // No CORS headers of its own: the API's origin policy is the same for every route.
    allowedOrigins: () => false,
    locker: (request) =>
      locker.forTenant(stateOf(request).ctx.tenantId, (storeId) => {
        const uploadId = uploadIdOfStoreId(storeId);
        if (uploadId === undefined) throw new Error(`a tus upload with a foreign id: ${storeId}`);
        return uploadId;
      }),
    namingFunction: (request) => resumable.idOfKey(tusUploadKey(stateOf(request).newUploadId)),
    // The route checked the id (a UUID, the caller's own upload) before the tus server sees the request.
    getFileIdFromRequest: (_request, lastPath) =>
      lastPath === undefined ? undefined : resumable.idOfKey(tusUploadKey(lastPath)),
    generateUrl: (_request, { path, id }) => `${path}/${uploadIdOfStoreId(id) ?? ''}`,
    onUploadCreate: async (request, upload) => {
      await create(stateOf(request), upload);
      return {};
    },
    onUploadFinish: async (request, upload) => {
      const state = stateOf(request);
      const uploadId = uploadIdOfStoreId(upload.id);
      if (uploadId === undefined) throw new Error(`a tus upload with a foreign id: ${upload.id}`);
      await finish(state.ctx, state.userId, uploadId);
      return { headers: { 'Parley-Attachment-Id': uploadId } };
    },
    onResponseError: (request, error) => {
      // Parley's own errors (and any bug) are answered by the route as problems, not as tus' text.
      if (!isTusError(error)) {
        const state = states.get(request);
        if (state) state.failure ??= error;
      }
      return undefined;
    },
  });

  /** A creation's checks and its row: the name, a non-empty length, the quota reserved for all of it. */
  async function create(state: RequestState, upload: Upload): Promise<void> {
    const length = upload.size ?? 0;
    const name = upload.metadata?.filename ?? upload.metadata?.name;
    if (name === undefined || name === null) {
      throw new AppError('validation_failed', 'Upload-Metadata names the file', [
        { path: '/headers/upload-metadata', message: 'has no "filename" (base64)' },
      ]);
    }
    const fileName = checkFileName(name, '/headers/upload-metadata');
    if (length === 0) {
      throw new AppError('validation_failed', 'the file is empty', [
        { path: '/headers/upload-length', message: 'is 0' },
      ]);
    }
    await inTenant(orm, state.ctx.tenantId, async (scope) => {
      const reservation = await reserveStorage(scope, {
        id: state.newUploadId,
        bytes: length,
        expiresInMs: UPLOAD_TTL_MS,
        defaultQuotaBytes: limits.defaultQuotaBytes,
      });
      if (!reservation.reserved) {
        throw new AppError(
          'quota_exceeded',
          `the tenant's storage quota has ${reservation.freeBytes} bytes free, fewer than this upload's ${length}`,
        );
      }
      await insertUpload(scope, {
        id: state.newUploadId,
        uploaderId: state.userId,
        method: 'tus',
        name: fileName,
        length,
        key: tusUploadKey(state.newUploadId),
        expiresInMs: UPLOAD_TTL_MS,
      });
    });
  }

  /**
   * Makes a complete upload an attachment, once: under the upload's lock, so two requests that both saw the
   * last byte (a retry, a HEAD) cannot both store it; the second finds the row finished.
   */
  async function finish(ctx: TenantContext, userId: string, uploadId: string): Promise<void> {
    const lock = locker.forTenant(ctx.tenantId).newLock(uploadId);
    await lock.lock(new AbortController().signal, () => undefined);
    try {
      const row = await inTenant(orm, ctx.tenantId, (scope) => findUpload(scope, uploadId));
      if (row === undefined) throw notFound('upload');
      if (row.finishedAt !== null) return;
      const key = tusUploadKey(uploadId);
      await deps.attachments.storeFinishedUpload(ctx, userId, {
        id: uploadId,
        stream: await resumable.read(key),
        name: row.name,
        reserveBytes: 'held',
        expectedBytes: row.length,
        alsoInTransaction: async (scope) => {
          if (!(await markUploadFinished(scope, uploadId))) {
            throw new AppError('conflict', 'the upload was finished by another request');
          }
          // The bytes are the attachment's now; the upload's own copy goes.
          await queueStorageRemovals(scope, [key]);
        },
      });
    } finally {
      await lock.unlock();
    }
  }

  /**
   * The caller's own tus upload, or 404 (another user's or tenant's, or a presigned upload, looks the same as
   * none); 410 once expired.
   */
  async function ownUpload(ctx: TenantContext, uploadId: string): Promise<UploadRow> {
    const userId = actingUserId(ctx);
    const row = await inTenant(orm, ctx.tenantId, (scope) => findUpload(scope, uploadId));
    if (row === undefined || row.uploaderId !== userId || row.method !== 'tus') throw notFound('upload');
    if (row.expiresAt.getTime() <= Date.now()) throw new AppError('gone', 'the upload expired');
    return row;
  }

  /** Hands a request to the tus server; what failed inside it is thrown as the route's error. */
  async function viaTus(
    request: TusRequest,
    state: RequestState | undefined,
    body?: Readable,
  ): Promise<TusResponse> {
    const init: RequestInit & { duplex?: 'half' } = { method: request.method, headers: request.headers };
    if (body !== undefined) {
      init.body = Readable.toWeb(body) as ReadableStream;
      init.duplex = 'half';
    }
    const webRequest = new Request(new URL(request.url, 'http://parley.invalid'), init);
    if (state !== undefined) states.set(webRequest, state);
    const response = await server.handleWeb(webRequest);
    const text = await response.text();
    const failure = state?.failure;
    if (failure instanceof Error) throw failure;
    if (failure !== undefined) throw new Error(`the tus server failed: ${JSON.stringify(failure)}`);
    if (response.status >= 400) {
      const code = CODE_OF_TUS_STATUS[response.status];
      if (code === undefined) throw new Error(`the tus server answered ${response.status}: ${text.trim()}`);
      throw new AppError(code, text.trim() || ERROR_CODES[code].title);
    }
    // The tus server's CORS headers are not the API's.
    for (const name of [...response.headers.keys()]) {
      if (name.startsWith('access-control-')) response.headers.delete(name);
    }
    return { status: response.status, headers: response.headers, body: text };
  }

  /** The body to hand on: verified first when it carries `Upload-Checksum`. */
  async function bodyOf(
    request: TusRequest,
    room: number,
  ): Promise<{ body?: Readable; verified?: VerifiedBody }> {
    if (request.body === undefined) return {};
    const checksum = request.headers.get('upload-checksum');
    if (checksum === null) return { body: keepWhatArrives(request.body) };
    const verified = await verifyBody(request.body, parseUploadChecksum(checksum), room);
    return { body: verified.open(), verified };
  }

  const expiresHeader = (row: Pick<UploadRow, 'expiresAt'>) => row.expiresAt.toUTCString();

  return {
    /** One request to /v1/uploads or /v1/uploads/{id}, answered as tus says. */
    async handle(request: TusRequest, uploadId?: string): Promise<TusResponse> {
      if (request.method === 'OPTIONS') {
        const response = await viaTus(request, undefined);
        response.headers.set('Tus-Extension', TUS_EXTENSIONS.join(','));
        response.headers.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
        return response;
      }
      const ctx = request.ctx;
      if (ctx === undefined) throw new Error('a tus request other than OPTIONS without its caller');
      const state: RequestState = { ctx, userId: actingUserId(ctx), newUploadId: newId() };

      if (request.method === 'POST') {
        if (request.headers.has('upload-concat')) {
          throw new AppError('validation_failed', 'uploads cannot be concatenated here', [
            { path: '/headers/upload-concat', message: 'the concatenation extension is not offered' },
          ]);
        }
        if (request.headers.has('upload-defer-length')) {
          throw new AppError('validation_failed', 'declare the length when creating the upload', [
            { path: '/headers/upload-defer-length', message: 'the quota is reserved for the whole length' },
          ]);
        }
        const declared = Number(request.headers.get('upload-length'));
        const { body, verified } = await bodyOf(
          request,
          Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, limits.maxFileBytes) : 0,
        );
        try {
          const response = await viaTus(request, state, body);
          const row = await inTenant(orm, ctx.tenantId, (scope) => findUpload(scope, state.newUploadId));
          if (row !== undefined && row.finishedAt === null)
            response.headers.set('Upload-Expires', expiresHeader(row));
          return response;
        } finally {
          await verified?.dispose();
        }
      }

      if (uploadId === undefined) throw new Error(`tus ${request.method} without an upload id`);
      const row = await ownUpload(ctx, uploadId);

      if (request.method === 'HEAD') {
        if (row.finishedAt !== null) return finishedHead(row);
        const response = await viaTus(request, state);
        // Every byte arrived but the attachment was not made (the request that sent the last one failed
        // after): made now, so a client that only checks the offset still gets its attachment.
        if (response.headers.get('upload-offset') === String(row.length)) {
          await finish(ctx, state.userId, uploadId);
          return finishedHead(row);
        }
        response.headers.set('Upload-Expires', expiresHeader(row));
        return response;
      }

      if (request.method === 'PATCH') {
        if (row.finishedAt !== null) return finishedPatch(request, row);
        const offset = Number(request.headers.get('upload-offset'));
        const room = Number.isSafeInteger(offset) && offset >= 0 ? Math.max(0, row.length - offset) : 0;
        const { body, verified } = await bodyOf(request, room);
        try {
          const response = await viaTus(request, state, body);
          if (response.headers.get('upload-offset') !== String(row.length)) {
            response.headers.set('Upload-Expires', expiresHeader(row));
          }
          return response;
        } finally {
          await verified?.dispose();
        }
      }

      // DELETE: termination, of an upload not finished (a finished one is an attachment: delete that).
      if (row.finishedAt !== null) {
        throw new AppError(
          'conflict',
          `the upload is finished: it is attachment ${uploadId}, deleted with DELETE /v1/attachments/${uploadId}`,
        );
      }
      const response = await viaTus(request, state);
      await inTenant(orm, ctx.tenantId, async (scope) => {
        // Its trigger queues the removal of what is left; the quota is given back at once.
        await deleteUpload(scope, uploadId);
        await releaseReservation(scope, uploadId);
      });
      return response;
    },
  };
}

/** HEAD of a finished upload: every byte is there (the store's copy may be gone already). */
function finishedHead(row: UploadRow): TusResponse {
  return {
    status: 200,
    headers: new Headers({
      'Tus-Resumable': TUS_RESUMABLE,
      'Cache-Control': 'no-store',
      'Upload-Offset': String(row.length),
      'Upload-Length': String(row.length),
      'Parley-Attachment-Id': row.id,
    }),
    body: '',
  };
}

/** PATCH of a finished upload: a retry of the last request (nothing more to send) is answered as done. */
function finishedPatch(request: TusRequest, row: UploadRow): TusResponse {
  request.body?.resume();
  const contentLength = Number(request.headers.get('content-length') ?? '0');
  if (request.headers.get('upload-offset') !== String(row.length) || contentLength !== 0) {
    throw new AppError('conflict', `the upload is finished: its offset is ${row.length}`);
  }
  return {
    status: 204,
    headers: new Headers({
      'Tus-Resumable': TUS_RESUMABLE,
      'Upload-Offset': String(row.length),
      'Parley-Attachment-Id': row.id,
    }),
    body: '',
  };
}

export type ResumableUploads = ReturnType<typeof createResumableUploads>;
