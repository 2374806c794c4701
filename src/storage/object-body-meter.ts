import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ObjectTooLargeError, type StoredObject } from './object-storage.ts';

/**
 * The stream an object's body passes through on its way into a backend: counts and hashes (SHA-256) the bytes
 * as they go, so a body is never held whole, and fails with `ObjectTooLargeError` at the first byte past
 * `maxBytes`, before that byte reaches the backend.
 */
export class ObjectBodyMeter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  // Not `size`: lib-storage's Upload takes a body's `size` property for its length.
  private bytesSeen = 0;
  /** Whether the body went past `maxBytes` (the error the backends report then, whatever else failed). */
  exceeded = false;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.bytesSeen + chunk.length > this.maxBytes) {
      this.exceeded = true;
      callback(new ObjectTooLargeError(this.maxBytes));
      return;
    }
    this.bytesSeen += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }

  /** The size and hash of every byte that passed; call once, after the body ended. */
  stored(): StoredObject {
    return { size: this.bytesSeen, sha256: this.hash.digest('hex') };
  }
}
