import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { S3Store } from '@tus/s3-store';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { pipeline, Readable } from 'node:stream';
import { assertByteRange } from './byte-range.ts';
import { isTusNotFound } from './tus-errors.ts';
import { ObjectBodyMeter } from './object-body-meter.ts';
import { assertObjectKey, assertObjectKeyPrefix } from './object-keys.ts';
import {
  ObjectNotFoundError,
  ObjectTooLargeError,
  type ByteRange,
  type ObjectStorage,
  type PresignedPut,
  type PresignGetOptions,
  type PresignPutOptions,
  type PutOptions,
  type ResumableUploads,
  type StoredObject,
} from './object-storage.ts';

/** Where the S3 backend keeps objects and how it reaches them (docs/CONFIG.md, the PARLEY_S3_* settings). */
export interface S3StorageOptions {
  /** An S3-compatible server's URL (MinIO, s3rver, …); AWS's own endpoint for the region when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** With `secretAccessKey`; when absent, the SDK's default chain (environment, instance role, …) applies. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `<endpoint>/<bucket>/<key>` rather than `<bucket>.<endpoint>/<key>`: what most self-hosted servers need. */
  forcePathStyle: boolean;
  /** Put before every key (`parley/`), so one bucket can hold other things too; `list` gives keys without it. */
  prefix?: string;
}

/**
 * How much of a body an upload holds in memory: one part of 5 MiB (S3's smallest), filled and then sent before
 * the next is read (one uploader), so a slow bucket slows the client rather than filling memory. Bodies of one
 * part or less go up as one PutObject.
 */
const UPLOAD_PART_BYTES = 5 * 1024 * 1024;
const UPLOAD_PARTS_IN_FLIGHT = 1;

/** Whether S3 answered that there is no such object (GetObject's NoSuchKey, HeadObject's bare 404). */
function isNotFound(error: unknown): boolean {
  if (error instanceof NoSuchKey || error instanceof NotFound) return true;
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404;
}

/**
 * The bytes `range` asked for, out of a ranged GetObject's body. A server may answer with more than was asked:
 * the whole object (HTTP lets a server ignore Range), or a longer range (s3rver reads `bytes=0-0` as `bytes=0-`);
 * what it sent is cut down to the range rather than returned as the range.
 */
function exactRange(body: Readable, range: ByteRange, contentRange: string | undefined): Readable {
  const sent = /^bytes (\d+)-(\d+)\//.exec(contentRange ?? '');
  const sentStart = sent ? Number(sent[1]) : 0;
  const sentEnd = sent ? Number(sent[2]) : Infinity;
  if (sentStart > range.start) {
    body.destroy();
    throw new Error(
      `asked for bytes ${range.start}-${range.end}, S3 sent ${contentRange ?? 'no Content-Range'}`,
    );
  }
  if (sentStart === range.start && sentEnd <= range.end) return body;
  return Readable.from(bytesWithin(body, range.start - sentStart, range.end - range.start + 1), {
    objectMode: false,
  });
}

/** The `length` bytes of `body` after its first `skip` bytes; stops reading (and so destroys) `body` then. */
async function* bytesWithin(body: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let toTake = length;
  for await (const chunk of body) {
    let bytes = chunk as Buffer;
    if (toSkip >= bytes.length) {
      toSkip -= bytes.length;
      continue;
    }
    bytes = bytes.subarray(toSkip, toSkip + toTake);
    toSkip = 0;
    toTake -= bytes.length;
    yield bytes;
    if (toTake === 0) return;
  }
}

/**
 * Objects in an S3-compatible bucket. Bodies of unknown length stream up in 5 MiB parts (lib-storage's Upload),
 * so memory per upload is bounded; S3 makes an object visible only once its PutObject or multipart upload
 * completes, and a failed upload aborts its multipart upload.
 */
export class S3Storage implements ObjectStorage {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly clientConfig: S3ClientConfig;
  private resumableUploads: ResumableUploads | undefined;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3StorageOptions) {
    const { accessKeyId, secretAccessKey } = options;
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    assertObjectKeyPrefix(this.prefix);
    this.clientConfig = {
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials:
        accessKeyId !== undefined && secretAccessKey !== undefined
          ? { accessKeyId, secretAccessKey }
          : undefined,
      // The SDK's default (a CRC32 on every request and response) is refused or not sent by S3-compatible
      // servers such as s3rver and older MinIO; the integrity check Parley relies on is its own SHA-256.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    this.client = new S3Client(this.clientConfig);
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<StoredObject> {
    assertObjectKey(key);
    const meter = new ObjectBodyMeter(options.maxBytes);
    let bodyError: Error | undefined;
    // A body that fails destroys the meter with its error, which fails the upload as it reads.
    pipeline(body, meter, (error) => {
      if (error) bodyError = error;
    });
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.prefix + key,
        Body: meter,
        ContentType: options.contentType,
      },
      partSize: UPLOAD_PART_BYTES,
      queueSize: UPLOAD_PARTS_IN_FLIGHT,
    });
    try {
      // When the meter fails (too many bytes, or the body's error), Upload's own failure path sends
      // AbortMultipartUpload, if it had started one, before `done()` rejects. `upload.abort()` is not used:
      // it makes `done()` reject at once while that cleanup still runs, unawaited, in the background.
      await upload.done();
    } catch (error) {
      meter.destroy();
      if (meter.exceeded) throw new ObjectTooLargeError(options.maxBytes);
      throw bodyError ?? error;
    }
    return meter.stored();
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertObjectKey(key);
    if (range) assertByteRange(range);
    try {
      const output = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      if (!(output.Body instanceof Readable))
        throw new Error(`GetObject of ${key} answered without a body stream`);
      return range ? exactRange(output.Body, range, output.ContentRange) : output.Body;
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    assertObjectKey(key);
    try {
      const output = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      return { size: output.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    // S3 answers 204 whether or not the object was there.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    assertObjectKeyPrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.bucket, Prefix: this.prefix + prefix },
    );
    for await (const page of pages) {
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key.slice(this.prefix.length), size: object.Size ?? 0 };
      }
    }
  }

  async presignGet(key: string, options: PresignGetOptions): Promise<string> {
    assertObjectKey(key);
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.prefix + key,
      ResponseContentType: options.contentType,
      ResponseContentDisposition: options.contentDisposition,
    });
    return getSignedUrl(this.client, command, { expiresIn: options.expiresInSeconds });
  }

  async presignPut(key: string, options: PresignPutOptions): Promise<PresignedPut> {
    assertObjectKey(key);
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.prefix + key,
      ContentLength: options.contentLength,
    });
    const url = await getSignedUrl(this.client, command, {
      expiresIn: options.expiresInSeconds,
      // Signed, so a server that checks signed headers refuses another length; Parley checks it anyway.
      signableHeaders: new Set(['content-length']),
    });
    return { method: 'PUT', url, headers: { 'content-length': String(options.contentLength) } };
  }

  /**
   * tus uploads in the bucket, beside the objects (`<prefix>tus/<id>`, with the store's `.info` and `.part`
   * objects): `@tus/s3-store`, which holds a part below S3's 5 MiB minimum as an object of its own between
   * requests, and spools each part to a temporary file rather than memory. Object tags are off (not every
   * S3-compatible server has them); expiry is Parley's (the uploads table).
   */
  resumable(): ResumableUploads {
    if (this.resumableUploads) return this.resumableUploads;
    const store = new S3Store({
      s3ClientConfig: { ...this.clientConfig, bucket: this.bucket },
      partSize: 8 * 1024 * 1024,
      maxConcurrentPartUploads: 4,
      useTags: false,
    });
    const prefix = this.prefix;
    this.resumableUploads = {
      store,
      idOfKey: (key) => prefix + key,
      keyOfId: (id) => (id.startsWith(prefix) ? id.slice(prefix.length) : undefined),
      read: (key) => store.read(prefix + key),
      remove: async (key) => {
        assertObjectKey(key);
        try {
          await store.remove(prefix + key);
        } catch (error) {
          if (!isTusNotFound(error)) throw error;
        }
        // What the store's own removal leaves: the held-back part, and the rest when its `.info` was gone.
        await Promise.all([key, `${key}.info`, `${key}.part`].map((name) => this.delete(name)));
      },
    };
    return this.resumableUploads;
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
