import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../errors.ts';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { ANY_ORIGIN } from '../../http/cors.ts';
import { errorResponses, NoContent, Uuid } from '../../http/schemas.ts';
import { serveObject, setFileSafetyHeaders } from '../../http/serve-object.ts';
import { isServedInline } from '../../media/content-type.ts';
import type { ObjectStorage } from '../../storage/object-storage.ts';
import {
  AttachmentParams,
  AttachmentView,
  FileParams,
  PresignedUpload,
  PresignRequest,
  StorageUsage,
} from './attachments.schemas.ts';
import type { DirectUploads } from './direct-uploads.ts';
import type { AttachmentsService, UploadPart } from './attachments.service.ts';

const tags = ['attachments'];
const tenantCallers: Array<Record<string, string[]>> = [{ apiKey: [] }, { userToken: [] }];
const asUser = { auth: 'user' } as const;

/** The parts of a multipart body as the service takes them: no Fastify types past this point. */
async function* uploadPartsOf(request: FastifyRequest): AsyncIterable<UploadPart> {
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        yield { kind: 'file', field: part.fieldname, fileName: part.filename, stream: part.file };
      } else {
        yield {
          kind: 'field',
          name: part.fieldname,
          value: typeof part.value === 'string' ? part.value : '',
        };
      }
    }
  } catch (error) {
    // @fastify/multipart's own errors (too many parts, files, fields) carry their codes (src/errors.ts);
    // busboy's (a body cut short, a broken part header) are the client's, whatever they say.
    if (error instanceof AppError || isMultipartLimitError(error)) throw error;
    throw new AppError('validation_failed', 'the multipart body is malformed or was cut short', [
      { path: '/body', message: 'is not a complete multipart/form-data body' },
    ]);
  }
}

const isMultipartLimitError = (error: unknown) =>
  typeof error === 'object' &&
  error !== null &&
  typeof (error as { code?: unknown }).code === 'string' &&
  (error as { code: string }).code.startsWith('FST_');

/** /v1/attachments and the signed links of /v1/files (docs/ATTACHMENTS.md). */
export function registerAttachmentRoutes(
  app: App,
  attachments: AttachmentsService,
  direct: DirectUploads,
  storage: ObjectStorage,
): void {
  app.post('/v1/attachments', {
    config: { ...asUser, rateLimitBudget: 'uploads' },
    schema: {
      operationId: 'uploadAttachment',
      tags,
      security: tenantCallers,
      summary: 'Upload a file',
      description:
        'A `multipart/form-data` body with one `file` part, and optionally a `name` field before it (else ' +
        "the file part's filename is the name). The bytes are streamed to storage and typed by what they " +
        'are, not by what the client says. Images are `pending` until their thumbnails are made; an ' +
        '`attachment.updated` event follows for a sent one. Send the id in `attachment_ids` of a message.',
      consumes: ['multipart/form-data'],
      response: {
        201: AttachmentView,
        ...errorResponses('forbidden', 'payload_too_large', 'unsupported_media_type', 'quota_exceeded'),
      },
    },
    handler: async (request, reply) => {
      if (!request.isMultipart()) {
        throw new AppError('unsupported_media_type', 'upload with Content-Type: multipart/form-data');
      }
      const length = Number(request.headers['content-length']);
      const view = await attachments.upload(tenantContext(request), {
        parts: uploadPartsOf(request),
        declaredBytes: Number.isSafeInteger(length) && length >= 0 ? length : undefined,
      });
      return reply.code(201).send(view);
    },
  });

  app.post('/v1/attachments/presign', {
    config: { ...asUser, rateLimitBudget: 'uploads' },
    schema: {
      operationId: 'presignAttachmentUpload',
      tags,
      security: tenantCallers,
      summary: 'Start a direct upload to S3',
      description:
        'With S3 storage only (409 on a server that keeps files on its disk). The file is checked as any ' +
        'upload is, before its bytes: its name, the per-file limit (413) and the quota, reserved for all of ' +
        'it (507). → a presigned PUT of exactly `size` bytes straight to the bucket, valid until ' +
        '`expires_at`; then `POST /v1/attachments/{id}/complete`. Never completed, it is removed after 24 h.',
      body: PresignRequest,
      response: {
        201: PresignedUpload,
        ...errorResponses('forbidden', 'conflict', 'payload_too_large', 'rate_limited', 'quota_exceeded'),
      },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await direct.presign(tenantContext(request), request.body)),
  });

  app.post('/v1/attachments/:attachment_id/complete', {
    config: asUser,
    schema: {
      operationId: 'completeAttachmentUpload',
      tags,
      security: tenantCallers,
      summary: 'Finish a direct upload',
      description:
        'The bytes PUT to the presigned URL become the attachment: counted (exactly the size declared, or ' +
        '400 and they are removed: PUT again while the URL lasts), hashed and typed, where they are. 409 ' +
        'when nothing was PUT; a retry after success answers the attachment again.',
      params: AttachmentParams,
      response: {
        200: AttachmentView,
        ...errorResponses('forbidden', 'not_found', 'conflict', 'gone'),
      },
    },
    handler: (request) => direct.complete(tenantContext(request), request.params.attachment_id),
  });

  app.get('/v1/attachments/:attachment_id', {
    config: asUser,
    schema: {
      operationId: 'getAttachment',
      tags,
      security: tenantCallers,
      summary: 'An attachment, with fresh links',
      description: 'Its uploader, or any member of the conversation it was sent to, may read it.',
      params: AttachmentParams,
      response: { 200: AttachmentView, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => attachments.get(tenantContext(request), request.params.attachment_id),
  });

  app.delete('/v1/attachments/:attachment_id', {
    config: asUser,
    schema: {
      operationId: 'deleteAttachment',
      tags,
      security: tenantCallers,
      summary: 'Delete an attachment not sent yet',
      description:
        'Its uploader only; a sent attachment goes with its message (409). Its bytes are removed after.',
      params: AttachmentParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: async (request, reply) => {
      await attachments.remove(tenantContext(request), request.params.attachment_id);
      return reply.code(204).send(null);
    },
  });

  app.get('/v1/admin/tenants/:tenant_id/usage', {
    config: { auth: 'operator' },
    schema: {
      operationId: 'getTenantUsage',
      tags: ['admin'],
      security: [{ operatorToken: [] }],
      summary: "A tenant's storage use",
      description:
        'Bytes its attachments keep (every rendition), its quota, and how many attachments it has.',
      params: Type.Object({ tenant_id: Uuid }),
      response: { 200: StorageUsage, ...errorResponses('not_found') },
    },
    handler: (request) => attachments.usage(request.params.tenant_id),
  });

  app.get('/v1/files/:token', {
    config: { auth: 'none', cors: ANY_ORIGIN },
    schema: {
      operationId: 'getFile',
      tags,
      security: [],
      summary: 'The bytes behind a signed link',
      description:
        'No credentials: the link is the credential, for one object until it expires (403 for a link that ' +
        'is not valid, 410 once expired). Range, If-None-Match and If-Range are honoured. Anything a browser ' +
        'could run is served as a download, with `X-Content-Type-Options: nosniff` and a sandboxing CSP. ' +
        'With S3 storage, it redirects to a presigned GET.',
      params: FileParams,
      // Whatever the file is: its sniffed type, or application/octet-stream for what a browser could run.
      produces: ['*/*'],
      response: {
        200: Type.Unknown({ description: 'The bytes' }),
        206: Type.Unknown({ description: 'The bytes of the range asked for' }),
        302: Type.Null({ description: 'A presigned GET of the object (S3 storage)' }),
        304: Type.Null({ description: 'Not modified (If-None-Match)' }),
        ...errorResponses('forbidden', 'not_found', 'gone', 'range_not_satisfiable'),
      },
    },
    handler: async (request, reply) => {
      // Every answer here, refusals too, carries nosniff, the sandbox and no-store until a file is served.
      setFileSafetyHeaders(reply);
      const file = await attachments.openFile(request.params.token);
      if (file.kind === 'redirect') return reply.redirect(file.url, 302);
      return serveObject(request, reply, {
        size: file.size,
        etag: `"${file.sha256}"`,
        contentType: file.contentType,
        fileName: file.fileName,
        inline: isServedInline(file.contentType),
        maxAgeSeconds: file.maxAgeSeconds,
        open: (range) => storage.get(file.key, range),
      });
    },
  });
}
