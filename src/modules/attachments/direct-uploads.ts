import type { AttachmentLimits } from '../../config.ts';
import type { Orm } from '../../db/client.ts';
import { inTenant } from '../../db/tenant-scope.ts';
import { actingUserId, type TenantContext } from '../../context.ts';
import { AppError, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { ObjectStorage } from '../../storage/object-storage.ts';
import { uploadKey } from './attachment-keys.ts';
import { reserveStorage } from './attachments.repository.ts';
import { checkFileName, type AttachmentsService } from './attachments.service.ts';
import { UPLOAD_TTL_MS } from './resumable-uploads.ts';
import { findUpload, insertUpload, markUploadFinished } from './uploads.repository.ts';

/**
 * Direct uploads to S3 (docs/ATTACHMENTS.md, "Resumable and direct uploads"): `presign` checks the file as
 * any upload is checked before its bytes (name, per-file limit, quota reserved for all of it), records the
 * upload and answers a presigned PUT of exactly that many bytes straight to the bucket, where the bytes
 * stay; `complete` reads them back once (S3-compatible servers do not all enforce a signed length, so the
 * size is checked here), types and hashes them, and makes them the attachment with the upload's id.
 */
export function createDirectUploads(deps: {
  orm: Orm;
  storage: ObjectStorage;
  limits: AttachmentLimits;
  attachments: AttachmentsService;
}) {
  const { orm, storage, limits } = deps;
  return {
    /** `POST /v1/attachments/presign`. */
    async presign(ctx: TenantContext, request: { name: string; size: number }) {
      const presignPut = storage.presignPut?.bind(storage);
      if (presignPut === undefined) {
        throw new AppError(
          'conflict',
          'this server keeps files on its own disk: upload with POST /v1/attachments or /v1/uploads (tus)',
        );
      }
      const userId = actingUserId(ctx);
      const name = checkFileName(request.name, '/body/name');
      if (request.size > limits.maxFileBytes) {
        throw new AppError('payload_too_large', `a file may have at most ${limits.maxFileBytes} bytes`);
      }
      const id = newId();
      const key = uploadKey(ctx.tenantId, id);
      await inTenant(orm, ctx.tenantId, async (scope) => {
        const reservation = await reserveStorage(scope, {
          id,
          bytes: request.size,
          expiresInMs: UPLOAD_TTL_MS,
          defaultQuotaBytes: limits.defaultQuotaBytes,
        });
        if (!reservation.reserved) {
          throw new AppError(
            'quota_exceeded',
            `the tenant's storage quota has ${reservation.freeBytes} bytes free, fewer than this file's ${request.size}`,
          );
        }
        await insertUpload(scope, {
          id,
          uploaderId: userId,
          method: 'presigned',
          name,
          length: request.size,
          key,
          expiresInMs: UPLOAD_TTL_MS,
        });
      });
      const expiresInSeconds = limits.linkTtlSeconds;
      const upload = await presignPut(key, { expiresInSeconds, contentLength: request.size });
      return {
        id,
        upload,
        expires_at: new Date(Date.now() + expiresInSeconds * 1000).toISOString(),
      };
    },

    /** `POST /v1/attachments/{id}/complete`: the attachment; again for a retry once it is made. */
    async complete(ctx: TenantContext, id: string) {
      const userId = actingUserId(ctx);
      const row = await inTenant(orm, ctx.tenantId, (scope) => findUpload(scope, id));
      if (row === undefined || row.uploaderId !== userId || row.method !== 'presigned') {
        throw notFound('upload');
      }
      if (row.finishedAt !== null) return deps.attachments.get(ctx, id);
      if (row.expiresAt.getTime() <= Date.now()) throw new AppError('gone', 'the upload expired');
      return deps.attachments.storeDirectUpload(ctx, userId, {
        id,
        key: uploadKey(ctx.tenantId, id),
        name: row.name,
        expectedBytes: row.length,
        alsoInTransaction: async (scope) => {
          if (!(await markUploadFinished(scope, id))) {
            throw new AppError('conflict', 'the upload was completed by another request');
          }
        },
      });
    },
  };
}

export type DirectUploads = ReturnType<typeof createDirectUploads>;
