import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../errors.ts';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, Uuid } from '../../http/schemas.ts';
import {
  UPLOADS_PATH,
  type ResumableUploads,
  type TusRequest,
  type TusResponse,
} from './resumable-uploads.ts';

const tags = ['attachments'];
const tenantCallers: Array<Record<string, string[]>> = [{ apiKey: [] }, { userToken: [] }];
const UploadParams = Type.Object({ upload_id: Uuid });

/**
 * The tus request headers, for the OpenAPI document: the tus server checks what they say, the schema only
 * their length (a number of bytes has at most 20 digits; a file name of 255 characters is 1,360 in base64).
 */
const header = (description: string, maxLength = 20) =>
  Type.Optional(Type.String({ maxLength, description }));
const TUS_RESUMABLE = header('`1.0.0`, on every request but OPTIONS (412 without it).');

/** The headers the tus server reads; the credentials and the rest stay with Parley. */
const TUS_HEADERS = [
  'tus-resumable',
  'upload-length',
  'upload-defer-length',
  'upload-offset',
  'upload-metadata',
  'upload-concat',
  'upload-checksum',
  'content-type',
  'content-length',
];

/** A request as the uploads service takes it: no Fastify past this point. */
function tusRequestOf(request: FastifyRequest, withCaller: boolean): TusRequest {
  const headers = new Headers();
  for (const name of TUS_HEADERS) {
    const value = request.headers[name];
    if (typeof value !== 'string') continue;
    // HTTP header values are bytes (Latin-1 as Node reads them); anything else cannot be one.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) {
      throw new AppError('validation_failed', `the ${name} header holds characters a header cannot`, [
        { path: `/headers/${name}`, message: 'is not a valid header value' },
      ]);
    }
    headers.set(name, value);
  }
  const method = request.method as TusRequest['method'];
  return {
    method,
    url: request.url,
    headers,
    ...(method === 'POST' || method === 'PATCH' ? { body: request.raw } : {}),
    ...(withCaller ? { ctx: tenantContext(request) } : {}),
  };
}

function send(reply: FastifyReply, response: TusResponse) {
  response.headers.forEach((value, name) => {
    // Fastify sets the length of what it sends itself.
    if (name !== 'content-length') void reply.header(name, value);
  });
  return reply.code(response.status).send(response.body === '' ? null : response.body);
}

/**
 * The tus 1.0 endpoints (docs/ATTACHMENTS.md, "Resumable and direct uploads"). The bodies of POST and PATCH
 * (`application/offset+octet-stream`) are left unread for the uploads service, which streams them.
 */
export async function registerUploadRoutes(app: App, uploads: ResumableUploads): Promise<void> {
  await app.register((scope: App, _options, done) => {
    scope.addContentTypeParser('application/offset+octet-stream', (_request, _payload, next) => {
      next(null, undefined);
    });

    scope.options(UPLOADS_PATH, {
      config: { auth: 'none' },
      schema: {
        operationId: 'discoverUploads',
        tags,
        security: [],
        summary: 'What the tus server offers',
        description:
          'tus discovery: `Tus-Version`, `Tus-Extension` (creation, creation-with-upload, termination, ' +
          'checksum, expiration), `Tus-Max-Size` (the per-file limit) and `Tus-Checksum-Algorithm`.',
        response: {
          204: Type.Null({ description: 'The tus headers' }),
          400: Type.Ref('Problem'),
          500: Type.Ref('Problem'),
          503: Type.Ref('Problem'),
        },
      },
      handler: async (request, reply) => send(reply, await uploads.handle(tusRequestOf(request, false))),
    });

    scope.post(UPLOADS_PATH, {
      config: { auth: 'user', rateLimitBudget: 'uploads' },
      schema: {
        operationId: 'createUpload',
        tags,
        security: tenantCallers,
        summary: 'Start a resumable upload (tus creation)',
        description:
          'Declares a file of `Upload-Length` bytes, named by the `filename` of `Upload-Metadata` (base64, ' +
          'as tus encodes it). The quota is reserved for all of it (507 when it does not fit); over the ' +
          'per-file limit is 413. → 201 with `Location: /v1/uploads/{id}` and `Upload-Expires` (24 h). The ' +
          'body may carry the first bytes (creation-with-upload, `Content-Type: application/offset+octet-stream`). ' +
          'When the last byte arrives the upload becomes attachment `{id}` (`Parley-Attachment-Id`), checked ' +
          'as `POST /v1/attachments` checks a file.',
        headers: Type.Object({
          'tus-resumable': TUS_RESUMABLE,
          'upload-length': header('The file size in bytes (required; deferred lengths are not offered).'),
          'upload-metadata': header('`filename <base64 name>`, and any other keys, which are ignored.', 4096),
          'upload-checksum': header('`<algorithm> <base64 digest>` of the body, when it carries bytes.', 256),
        }),
        response: {
          201: Type.Null({ description: 'Created: `Location` names the upload' }),
          ...errorResponses(
            'forbidden',
            'precondition_failed',
            'payload_too_large',
            'checksum_mismatch',
            'rate_limited',
            'quota_exceeded',
          ),
        },
      },
      handler: async (request, reply) => send(reply, await uploads.handle(tusRequestOf(request, true))),
    });

    scope.route({
      method: 'HEAD',
      url: `${UPLOADS_PATH}/:upload_id`,
      // @fastify/swagger leaves HEAD routes out unless told: this one is no GET's shadow.
      config: { auth: 'user', swagger: { exposeHeadRoute: true } },
      schema: {
        operationId: 'getUploadOffset',
        tags,
        security: tenantCallers,
        summary: 'Where a resumable upload stands',
        description:
          '`Upload-Offset` (the bytes stored) and `Upload-Length`: resume with a PATCH at that offset. An ' +
          'upload of another user or tenant is 404; an expired one 410. A finished one answers its length ' +
          'as the offset, with `Parley-Attachment-Id`.',
        params: UploadParams,
        headers: Type.Object({ 'tus-resumable': TUS_RESUMABLE }),
        response: {
          200: Type.Null({ description: 'The offset and length, in headers' }),
          ...errorResponses('forbidden', 'not_found', 'gone', 'precondition_failed', 'locked'),
        },
      },
      handler: async (request: FastifyRequest<{ Params: { upload_id: string } }>, reply) =>
        send(reply, await uploads.handle(tusRequestOf(request, true), request.params.upload_id)),
    });

    scope.patch(`${UPLOADS_PATH}/:upload_id`, {
      config: { auth: 'user' },
      schema: {
        operationId: 'appendToUpload',
        tags,
        security: tenantCallers,
        summary: 'Send bytes of a resumable upload',
        description:
          'The body (`Content-Type: application/offset+octet-stream`) is written at `Upload-Offset`, which ' +
          'must be where the upload stands (409 otherwise). What arrives before a dropped connection is ' +
          'kept. With `Upload-Checksum`, a body whose digest differs is refused (460) and none of it kept. ' +
          '→ 204 with the new `Upload-Offset`; the last bytes make the attachment (`Parley-Attachment-Id`).',
        params: UploadParams,
        headers: Type.Object({
          'tus-resumable': TUS_RESUMABLE,
          'upload-offset': header('Where these bytes go: the offset HEAD answered.'),
          'upload-checksum': header(
            '`<algorithm> <base64 digest>` of the body (sha1, sha256, sha512, md5).',
            256,
          ),
        }),
        response: {
          204: Type.Null({ description: 'Stored: the new `Upload-Offset`' }),
          ...errorResponses(
            'forbidden',
            'not_found',
            'conflict',
            'gone',
            'precondition_failed',
            'payload_too_large',
            'unsupported_media_type',
            'locked',
            'checksum_mismatch',
          ),
        },
      },
      handler: async (request, reply) =>
        send(reply, await uploads.handle(tusRequestOf(request, true), request.params.upload_id)),
    });

    scope.delete(`${UPLOADS_PATH}/:upload_id`, {
      config: { auth: 'user' },
      schema: {
        operationId: 'terminateUpload',
        tags,
        security: tenantCallers,
        summary: 'Abandon a resumable upload (tus termination)',
        description:
          'Its bytes are removed and its quota given back. A finished upload is an attachment: 409, delete ' +
          'the attachment instead.',
        params: UploadParams,
        headers: Type.Object({ 'tus-resumable': TUS_RESUMABLE }),
        response: {
          204: Type.Null({ description: 'Terminated' }),
          ...errorResponses('forbidden', 'not_found', 'conflict', 'gone', 'precondition_failed', 'locked'),
        },
      },
      handler: async (request, reply) =>
        send(reply, await uploads.handle(tusRequestOf(request, true), request.params.upload_id)),
    });
    done();
  });
}
