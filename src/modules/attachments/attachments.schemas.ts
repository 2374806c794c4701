import { Type, type Static } from 'typebox';
import { Nullable, Timestamp, Uuid } from '../../http/schemas.ts';

const Url = Type.String({
  description:
    'A signed link to the bytes, relative to the API (`/v1/files/…`): whoever holds it may fetch this one ' +
    'object until `url_expires_at`, with Range and caching headers; with S3 storage it redirects to a ' +
    'presigned GET. Ask `GET /v1/attachments/{id}` for fresh links.',
  examples: ['/v1/files/eyJ0IjoiMDE5YTliNmUifQ.8Jx3qY…'],
});

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
    width: Type.Integer(),
    height: Type.Integer(),
    content_type: Type.String({ examples: ['image/webp'] }),
    url: Url,
  },
  { title: 'Thumbnail' },
);

/** An attachment as the API shows it (docs/ATTACHMENTS.md). */
export const AttachmentView = Type.Object(
  {
    id: Uuid,
    conversation_id: Nullable(Uuid),
    uploader_id: Type.String(),
    name: Type.String({
      description: 'The file name given at upload, cleaned of paths and control characters',
    }),
    content_type: Type.String({
      description: 'What the bytes are, sniffed from them: never what the client claimed',
      examples: ['image/png'],
    }),
    size: Type.Integer({ description: 'Bytes of the original as served (for images, without metadata)' }),
    sha256: Type.String({ description: 'SHA-256 (hex) of the original as served' }),
    width: Nullable(Type.Integer()),
    height: Nullable(Type.Integer()),
    duration_ms: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "Audio and video: the length, read from the file's headers; absent when not known",
      }),
    ),
    status: AttachmentStatus,
    rejected_reason: Nullable(Type.String()),
    thumbnails: Type.Array(Thumbnail, {
      description: 'For images, once ready: 256 and 1024 px on the long side',
    }),
    url: Url,
    url_expires_at: Timestamp,
    created_at: Timestamp,
  },
  { title: 'AttachmentView', additionalProperties: false },
);
export type AttachmentView = Static<typeof AttachmentView>;

export const AttachmentParams = Type.Object({ attachment_id: Uuid });

export const FileParams = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 512, description: 'The signed part of a link' }),
});

export const StorageUsage = Type.Object(
  {
    storage_bytes: Type.Integer({
      description: 'Bytes the tenant keeps in storage now, every rendition counted',
    }),
    storage_quota_bytes: Type.Integer({
      description: "The tenant's quota: its own, or the deployment's default",
    }),
    attachments: Type.Integer({ description: 'Attachments kept' }),
  },
  { title: 'StorageUsage' },
);
export type StorageUsage = Static<typeof StorageUsage>;

/** `POST /v1/attachments/presign`: the file about to be put straight into S3. */
export const PresignRequest = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'The file name, checked as at any upload',
    }),
    size: Type.Integer({ minimum: 1, description: 'Exactly the bytes that will be PUT' }),
    content_type: Type.Optional(
      Type.String({
        maxLength: 255,
        description: 'What the client thinks it is; informative only (the type is sniffed from the bytes)',
      }),
    ),
  },
  { title: 'PresignRequest', additionalProperties: false },
);

export const PresignedUpload = Type.Object(
  {
    id: Uuid,
    upload: Type.Object({
      method: Type.Literal('PUT'),
      url: Type.String({ description: 'The presigned URL of the bucket: PUT the bytes there, nowhere else' }),
      headers: Type.Record(Type.String(), Type.String(), {
        description: 'Headers the PUT must carry as given (they are signed)',
      }),
    }),
    expires_at: Timestamp,
  },
  {
    title: 'PresignedUpload',
    additionalProperties: false,
    description: 'Then `POST /v1/attachments/{id}/complete` makes it an attachment',
  },
);
