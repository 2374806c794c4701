import { AppError } from './errors.ts';

/** Largest tenant-defined `metadata` object accepted, serialized as JSON. */
export const MAX_METADATA_BYTES = 8 * 1024;

/** Rejects metadata objects over MAX_METADATA_BYTES, naming the field at `path`. */
export function assertMetadataSize(metadata: Record<string, unknown> | undefined, path: string): void {
  if (metadata === undefined) return;
  if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
    throw new AppError('validation_failed', `metadata is larger than ${MAX_METADATA_BYTES} bytes`, [
      { path, message: `must be at most ${MAX_METADATA_BYTES} bytes as JSON` },
    ]);
  }
}
