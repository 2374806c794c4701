import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../../errors.ts';

// The tus checksum extension (docs/ATTACHMENTS.md, "Resumable and direct uploads"): a request may carry
// `Upload-Checksum: <algorithm> <base64 digest>` of its body; a body whose digest differs is refused with 460
// and none of it is kept. `@tus/server` does not implement the extension, so Parley checks the body before
// the tus server sees it: spooled to a temporary file while it is hashed, handed on only when it matches.

/** The algorithms `Tus-Checksum-Algorithm` announces: sha1 (the one tus requires), and stronger ones. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 };

export interface UploadChecksum {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

const badHeader = (message: string) =>
  new AppError('validation_failed', message, [{ path: '/headers/upload-checksum', message }]);

/** The `Upload-Checksum` header read, or a 400 saying what is wrong with it. */
export function parseUploadChecksum(header: string): UploadChecksum {
  const match = /^([a-z0-9-]+) ([A-Za-z0-9+/]+={0,2})$/.exec(header.trim());
  if (!match?.[1] || !match[2]) throw badHeader('is "<algorithm> <base64 digest>"');
  const algorithm = match[1];
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw badHeader(`the algorithm is one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const digest = Buffer.from(match[2], 'base64');
  if (digest.length !== DIGEST_BYTES[algorithm as ChecksumAlgorithm]) {
    throw badHeader(`a ${algorithm} digest has ${DIGEST_BYTES[algorithm as ChecksumAlgorithm]} bytes`);
  }
  return { algorithm: algorithm as ChecksumAlgorithm, digest };
}

/** A body whose checksum matched: its bytes, from a temporary file removed by `dispose`. */
export interface VerifiedBody {
  open(): Readable;
  size: number;
  dispose(): Promise<void>;
}

/**
 * Reads `body` whole into a temporary file, hashing it on the way, and hands it back only when its digest
 * is `checksum`'s: 460 `checksum_mismatch` otherwise, 400 when the body was cut short, 413 past `maxBytes`
 * (what the upload may still take). Memory stays flat: the bytes go to disk, not to a buffer.
 */
export async function verifyBody(
  body: Readable,
  checksum: UploadChecksum,
  maxBytes: number,
): Promise<VerifiedBody> {
  const directory = await mkdtemp(join(tmpdir(), 'parley-chunk-'));
  const dispose = () => rm(directory, { recursive: true, force: true });
  const path = join(directory, 'body');
  const hash = createHash(checksum.algorithm);
  let size = 0;
  // Set by the transform; an object, so the catch below reads what it set.
  const outcome = { isTooLarge: false };
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        outcome.isTooLarge = true;
        callback(new Error('body too large'));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(body, tap, createWriteStream(path));
  } catch (error) {
    await dispose();
    if (outcome.isTooLarge) {
      body.resume();
      throw new AppError('payload_too_large', `the upload has room for ${maxBytes} more bytes`);
    }
    if (body.destroyed || body.readableAborted) {
      throw new AppError('validation_failed', 'the request body was cut short', [
        { path: '/body', message: 'ended before its checksum could be verified' },
      ]);
    }
    throw error;
  }
  const digest = hash.digest();
  if (!timingSafeEqual(digest, checksum.digest)) {
    await dispose();
    throw new AppError(
      'checksum_mismatch',
      `the body's ${checksum.algorithm} is ${digest.toString('base64')}, not the ${checksum.digest.toString('base64')} sent`,
    );
  }
  return { open: () => createReadStream(path), size, dispose };
}
