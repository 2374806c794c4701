import { Type, type Static } from 'typebox';
import {
  count,
  EXAMPLE,
  int32,
  MediaTypeName,
  Nullable,
  Sha256Hex,
  text,
  Timestamp,
  Uuid,
} from '../../http/schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';
import { MAX_FILE_NAME_LENGTH } from '../../media/file-names.ts';

/** Alice's picture, uploaded and not sent yet; its links as the API signs them. */
const ATTACHMENT_EXAMPLE = {
  id: EXAMPLE.attachmentId,
  conversation_id: null,
  uploader_id: 'alice',
  name: 'mockup.png',
  content_type: 'image/png',
  size: 482133,
  sha256: 'fd4724e97003de393e3446a2b4345f1a4ea0a1e8d806b8368b07af096dc955eb',
  width: 1600,
  height: 1000,
  status: 'ready',
  rejected_reason: null,
  thumbnails: [
    {
      width: 256,
      height: 160,
      content_type: 'image/webp',
      url: '/v1/files/AQEAAGsCy2wBmptcLR5_MIpBO1xtfo-QAZqbclprfI2eDxorPE1ebw.luXHIIov31m1AfIJnmhVGJM3g-DO3mssf7E78GKK8i8',
    },
    {
      width: 1024,
      height: 640,
      content_type: 'image/webp',
      url: '/v1/files/AQIAAGsCy2wBmptcLR5_MIpBO1xtfo-QAZqbclprfI2eDxorPE1ebw.g5Jak5MwOe-E-8qRFlp0mqFQwZkhn7OT2LXZo-rmGUg',
    },
  ],
  url: '/v1/files/AQAAAGsCy2wBmptcLR5_MIpBO1xtfo-QAZqbclprfI2eDxorPE1ebw.TFQ6V38y48jFhvOrlEKNM7e_y8ONRC76-3mHl1Ixjos',
  url_expires_at: '2026-11-22T11:01:00.000Z',
  created_at: '2026-11-22T09:58:12.000Z',
};

const Url = Type.String({
  pattern: '^/v1/files/[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  maxLength: 522,
  description:
    'A signed link to the bytes, relative to the API (`/v1/files/…`): whoever holds it may fetch this one ' +
    'object until `url_expires_at`, with Range and caching headers; with S3 storage it redirects to a ' +
    'presigned GET. Ask `GET /v1/attachments/{id}` for fresh links.',
  examples: [ATTACHMENT_EXAMPLE.url],
});

/** Image sides in pixels (sharp's limit is far below this). */
const Pixels = int32(1, 2 ** 31 - 1);

const FileName = text(MAX_FILE_NAME_LENGTH, {
  description:
    'The file name given at upload, cleaned of paths and control characters; empty in the logged events ' +
    'of a deleted message (redacted)',
});

/** An HTTP header name (RFC 9110 token). */
const HeaderName = Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$", maxLength: 128 });

export const AttachmentStatus = Type.Union(
  [Type.Literal('pending'), Type.Literal('ready'), Type.Literal('rejected')],
  {
    description:
      '`pending`: stored, not yet processed (an image has no thumbnails yet); `ready`; `rejected`: ' +
      'processing refused it (`rejected_reason`), and its links serve nothing',
  },
);

export const Thumbnail = Type.Object(
  {
    width: Pixels,
    height: Pixels,
    content_type: MediaTypeName,
    url: Url,
  },
  { title: 'Thumbnail' },
);

/** An attachment as the API shows it (docs/ATTACHMENTS.md). */
export const AttachmentView = Type.Object(
  {
    id: Uuid,
    conversation_id: Nullable(Uuid),
    uploader_id: UserIdSchema,
    name: FileName,
    content_type: Type.String({
      ...MediaTypeName,
      description: 'What the bytes are, sniffed from them: never what the client claimed',
      examples: ['image/png'],
    }),
    size: count({ description: 'Bytes of the original as served (for images, without metadata)' }),
    sha256: Type.String({ ...Sha256Hex, description: 'SHA-256 (hex) of the original as served' }),
    width: Nullable(Pixels),
    height: Nullable(Pixels),
    duration_ms: Type.Optional(
      count({
        minimum: 1,
        description: "Audio and video: the length, read from the file's headers; absent when not known",
      }),
    ),
    status: AttachmentStatus,
    rejected_reason: Nullable(text(500)),
    thumbnails: Type.Array(Thumbnail, {
      maxItems: 2,
      description: 'For images, once ready: 256 and 1024 px on the long side',
    }),
    url: Url,
    url_expires_at: Timestamp,
    created_at: Timestamp,
  },
  { title: 'AttachmentView', additionalProperties: false, examples: [ATTACHMENT_EXAMPLE] },
);
export type AttachmentView = Static<typeof AttachmentView>;

export const AttachmentParams = Type.Object({ attachment_id: Uuid });

export const FileParams = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 512, description: 'The signed part of a link' }),
});

export const StorageUsage = Type.Object(
  {
    storage_bytes: count({
      description: 'Bytes the tenant keeps in storage now, every rendition counted',
    }),
    storage_quota_bytes: count({
      description: "The tenant's quota: its own, or the deployment's default",
    }),
    attachments: count({ description: 'Attachments kept' }),
  },
  {
    title: 'StorageUsage',
    examples: [{ storage_bytes: 734003200, storage_quota_bytes: 10737418240, attachments: 1284 }],
  },
);
export type StorageUsage = Static<typeof StorageUsage>;

const PRESIGNED_ID = '019a9b73-6b7c-7d8e-9f0a-1b2c3d4e5f6a';

/** `POST /v1/attachments/presign`: the file about to be put straight into S3. */
export const PresignRequest = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'The file name, checked as at any upload',
    }),
    size: count({ minimum: 1, description: 'Exactly the bytes that will be PUT' }),
    content_type: Type.Optional(
      Type.String({
        maxLength: 255,
        description: 'What the client thinks it is; informative only (the type is sniffed from the bytes)',
      }),
    ),
  },
  {
    title: 'PresignRequest',
    additionalProperties: false,
    examples: [{ name: 'site-walkthrough.mp4', size: 73400320, content_type: 'video/mp4' }],
  },
);

export const PresignedUpload = Type.Object(
  {
    id: Uuid,
    upload: Type.Object({
      method: Type.Literal('PUT'),
      url: Type.String({
        format: 'uri',
        maxLength: 8192,
        description: 'The presigned URL of the bucket: PUT the bytes there, nowhere else',
      }),
      headers: Type.Record(HeaderName, text(8192), {
        maxProperties: 32,
        description: 'Headers the PUT must carry as given (they are signed)',
      }),
    }),
    expires_at: Timestamp,
  },
  {
    title: 'PresignedUpload',
    additionalProperties: false,
    description: 'Then `POST /v1/attachments/{id}/complete` makes it an attachment',
    examples: [
      {
        id: PRESIGNED_ID,
        upload: {
          method: 'PUT',
          url:
            `https://parley-files.s3.eu-west-1.amazonaws.com/${EXAMPLE.tenantId}/${PRESIGNED_ID}/upload` +
            '?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD' +
            '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261122%2Feu-west-1%2Fs3%2Faws4_request' +
            '&X-Amz-Date=20261122T100000Z&X-Amz-Expires=3600' +
            '&X-Amz-Signature=3c1f9e0d8b7a65f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0' +
            '&X-Amz-SignedHeaders=content-length%3Bhost&x-id=PutObject',
          headers: { 'content-length': '73400320' },
        },
        expires_at: '2026-11-22T11:00:00.000Z',
      },
    ],
  },
);
