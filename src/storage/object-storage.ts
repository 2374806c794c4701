import type { Readable } from 'node:stream';
import type { DataStore } from '@tus/utils';

/**
 * Where attachment bytes live (docs/ATTACHMENTS.md, "Storage"): one interface, two backends (the local
 * disk under PARLEY_DATA_DIR, and S3-compatible object storage). Keys are Parley's own (`<tenant>/<id>/…`,
 * made of [A-Za-z0-9._/-] only); callers never pass a client's name as a key.
 */
export interface ObjectStorage {
  /** `disk` or `s3`: what /metrics, logs and the docs call it. */
  readonly kind: 'disk' | 's3';
  /**
   * Streams `body` into the object `key`, counting and hashing on the way; never holds it whole in memory.
   * More than `maxBytes` stops the write with `ObjectTooLargeError` and nothing is left behind; so does any
   * other failure (the body erroring, the backend failing). An object appears under `key` only complete.
   */
  put(key: string, body: Readable, options: PutOptions): Promise<StoredObject>;
  /** The object's bytes, or the inclusive byte range `start..end` of them; `ObjectNotFoundError` when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Its size, or undefined when there is no such object. */
  stat(key: string): Promise<{ size: number } | undefined>;
  /** Removes the object; removing one that is not there succeeds (removals are retried). */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix` (for `parley attachments gc`), in no promised order. */
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  /**
   * A presigned GET of the object (S3 only; the disk backend's links are Parley's own, signed by the
   * server), answering with the given headers. Undefined when the backend cannot presign.
   */
  presignGet?(key: string, options: PresignGetOptions): Promise<string>;
  /**
   * Deletes what writes cut short by a crash left behind, if the backend keeps any (the disk's temporary
   * files; S3 aborts its multipart uploads itself, and a bucket lifecycle rule covers a killed process).
   * Only what was last written more than `olderThanMs` ago; how many it deleted.
   */
  removeStaleTemp?(olderThanMs: number): Promise<number>;
  /**
   * Where resumable (tus) uploads keep their bytes until they finish: `@tus/server`'s store for this backend
   * (its file store under the disk's root, its S3 store in the bucket), in the storage's own namespace.
   */
  resumable(): ResumableUploads;
  /**
   * A presigned PUT of exactly `contentLength` bytes to `key` (S3 only: a client uploads straight to the
   * bucket). Undefined when the backend cannot presign. The server may not enforce the length: check it.
   */
  presignPut?(key: string, options: PresignPutOptions): Promise<PresignedPut>;
  /** Releases what the backend holds (an HTTP agent); storage is not used after. */
  close?(): Promise<void>;
}

export interface PutOptions {
  /** The most bytes the object may have. */
  maxBytes: number;
  /** Stored as the object's Content-Type where the backend keeps one. */
  contentType?: string;
}

/** What was stored: the count and the SHA-256 (hex) of exactly the bytes written. */
export interface StoredObject {
  size: number;
  sha256: string;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Resumable uploads of one storage backend (docs/ATTACHMENTS.md, "Resumable and direct uploads"). */
export interface ResumableUploads {
  /** The tus server's data store. */
  readonly store: DataStore;
  /** The store's id of an upload's key (`tus/<id>`, as attachment-keys.ts makes it), and back. */
  idOfKey(key: string): string;
  keyOfId(id: string): string | undefined;
  /** The bytes of a finished upload. */
  read(key: string): Promise<Readable>;
  /** Removes what an upload stored, finished or not; removing one that is gone succeeds. */
  remove(key: string): Promise<void>;
}

export interface PresignPutOptions {
  expiresInSeconds: number;
  contentLength: number;
}

/** A request the client makes itself: its method, URL and the headers it must send. */
export interface PresignedPut {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
}

export interface PresignGetOptions {
  expiresInSeconds: number;
  contentType: string;
  contentDisposition: string;
}

/** The body had more bytes than `maxBytes`: nothing was stored. */
export class ObjectTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes`);
    this.name = 'ObjectTooLargeError';
  }
}

/** No object under the key. */
export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no object ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}
