import { randomBytes } from 'node:crypto';
import {
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { assertByteRange } from './byte-range.ts';
import { isTusNotFound } from './tus-errors.ts';
import { ObjectBodyMeter } from './object-body-meter.ts';
import { assertObjectKey, assertObjectKeyPrefix, InvalidObjectKeyError, isObjectKey } from './object-keys.ts';
import {
  ObjectNotFoundError,
  type ByteRange,
  type ObjectStorage,
  type PutOptions,
  type ResumableUploads,
  type StoredObject,
} from './object-storage.ts';

/** The directory under the root where bodies are written before they are complete; never a key's first segment. */
const TEMP_DIRECTORY = '.tmp';

/** How many times `put` re-creates a parent directory that a concurrent `delete` pruned before the rename. */
const RENAME_ATTEMPTS = 3;

/**
 * How much a read of an object asks of the file at once. Node's default (64 KiB) spends more time on thread-pool
 * round trips than on bytes: 1 MiB about doubled what one 100 MiB download moves on loopback (docs/PERFORMANCE.md).
 * It is also what a download to a slow client holds at most, besides its socket's buffers.
 */
const READ_CHUNK_BYTES = 1024 * 1024;

/** How much a write to a file may gather before the stream stops reading its source (see `fileSink`). */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** The error code of a failed file system call, if it has one. */
function errorCode(error: unknown): string | undefined {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** Whether the error says there is nothing at the path (or a file where a directory was expected). */
function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** What is left of `chunks` once their first `bytesWritten` bytes are written: a write may take fewer than given. */
export function unwrittenPart(chunks: readonly Buffer[], bytesWritten: number): Buffer[] {
  const rest: Buffer[] = [];
  let skipped = 0;
  for (const buffer of chunks) {
    if (skipped + buffer.length <= bytesWritten) skipped += buffer.length;
    else if (skipped >= bytesWritten) rest.push(buffer);
    else {
      rest.push(buffer.subarray(bytesWritten - skipped));
      skipped = bytesWritten;
    }
  }
  return rest;
}

/** Writes all of `chunks`, in order, at the file's current position. */
async function writeFully(handle: FileHandle, chunks: Buffer[]): Promise<void> {
  for (let pending = chunks; pending.length > 0; ) {
    const { bytesWritten } = await handle.writev(pending);
    pending = unwrittenPart(pending, bytesWritten);
  }
}

/**
 * A sink into an open file that writes what arrived while the previous write ran in one `writev`: a body comes
 * off the socket in chunks of 64 KiB or less, and a thread-pool round trip per chunk, not the disk, would bound
 * an upload. It buffers up to `WRITE_BATCH_BYTES` before it pushes back. `settled()` resolves once no write is in
 * flight, whatever ended the stream: the file is not closed under a write.
 */
function fileSink(handle: FileHandle): { sink: Writable; settled: () => Promise<void> } {
  let inFlight: Promise<void> = Promise.resolve();
  const run = (chunks: Buffer[], callback: (error?: Error | null) => void) => {
    inFlight = writeFully(handle, chunks).then(
      () => callback(),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
  const sink = new Writable({
    highWaterMark: WRITE_BATCH_BYTES,
    write: (chunk: Buffer, _encoding, callback) => run([chunk], callback),
    writev: (chunks, callback) => run(chunks.map(({ chunk }) => chunk as Buffer), callback),
  });
  return { sink, settled: () => inFlight.then(() => undefined, () => undefined) };
}

/**
 * Objects as files under one directory (PARLEY_DATA_DIR's attachments): a key is a relative path under it. A body
 * is written to `<root>/.tmp/` and renamed into place once complete, so a reader never sees part of an object; a
 * crash mid-write leaves only a temp file, which `removeStaleTemp` deletes.
 */
export class LocalDiskStorage implements ObjectStorage {
  readonly kind = 'disk';
  private readonly root: string;
  private readonly tempDirectory: string;
  private resumableUploads: ResumableUploads | undefined;

  constructor(root: string) {
    this.root = resolve(root);
    this.tempDirectory = join(this.root, TEMP_DIRECTORY);
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<StoredObject> {
    const path = this.pathOf(key);
    await mkdir(this.tempDirectory, { recursive: true });
    const tempPath = join(this.tempDirectory, randomBytes(16).toString('hex'));
    // Opened (and so created) before any byte flows, so the cleanup below can never run before the file exists.
    const handle = await open(tempPath, 'wx', 0o600);
    try {
      const meter = new ObjectBodyMeter(options.maxBytes);
      await this.writeAll(handle, body, meter);
      await this.moveIntoPlace(tempPath, path);
      return meter.stored();
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
  }

  /** Streams `body` through `meter` into the open temp file, syncs it to disk and closes it, whatever happens. */
  private async writeAll(handle: FileHandle, body: Readable, meter: ObjectBodyMeter): Promise<void> {
    const { sink, settled } = fileSink(handle);
    try {
      await pipeline(body, meter, sink);
      await handle.sync();
    } finally {
      // A failed pipeline destroys the sink at once; a write it started may still be running.
      await settled();
      await handle.close();
    }
  }

  /** Renames the complete temp file to the object's path, creating its directories (again, if a delete pruned them). */
  private async moveIntoPlace(tempPath: string, path: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await mkdir(dirname(path), { recursive: true });
      try {
        await rename(tempPath, path);
        return;
      } catch (error) {
        if (errorCode(error) !== 'ENOENT' || attempt === RENAME_ATTEMPTS) throw error;
      }
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathOf(key);
    if (range) assertByteRange(range);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
    let size: number;
    try {
      const stats = await handle.stat();
      // A directory opens too (`a` when `a/b` exists), but it is not an object.
      if (!stats.isFile()) throw new ObjectNotFoundError(key);
      size = stats.size;
    } catch (error) {
      await handle.close();
      throw error;
    }
    // An end, always: the stream sizes each read to what is left, so a small file never takes a whole chunk.
    const whole = size > 0 ? { start: 0, end: size - 1 } : {};
    return handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES, ...(range ?? whole) });
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const stats = await stat(this.pathOf(key));
      return stats.isFile() ? { size: stats.size } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      // Nothing there, or a directory (which is no object): either way there is no object to remove.
      if (isMissing(error) || errorCode(error) === 'EISDIR') return;
      throw error;
    }
    await this.pruneEmptyParents(dirname(path));
  }

  /** Removes `directory` and its parents up to (not including) the root while they are empty. */
  private async pruneEmptyParents(directory: string): Promise<void> {
    for (
      let current = directory;
      current !== this.root && current.startsWith(this.root);
      current = dirname(current)
    ) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (or already gone): its parents are not empty either
      }
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    assertObjectKeyPrefix(prefix);
    // Starts at the deepest directory the prefix names whole (`a/b/` of `a/b/c`) rather than walking the root.
    yield* this.walk(prefix.slice(0, prefix.lastIndexOf('/') + 1), prefix);
  }

  /** Yields the objects under the directory `directoryKey` (`''` or ending in `/`) whose keys start with `prefix`. */
  private async *walk(directoryKey: string, prefix: string): AsyncGenerator<{ key: string; size: number }> {
    let entries;
    try {
      entries = await readdir(join(this.root, directoryKey), { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    for (const entry of entries) {
      if (directoryKey === '' && entry.name === TEMP_DIRECTORY) continue;
      const key = directoryKey + entry.name;
      if (entry.isDirectory()) {
        const subdirectoryKey = `${key}/`;
        if (subdirectoryKey.startsWith(prefix) || prefix.startsWith(subdirectoryKey)) {
          yield* this.walk(subdirectoryKey, prefix);
        }
      } else if (entry.isFile() && key.startsWith(prefix) && isObjectKey(key)) {
        const size = await this.stat(key);
        if (size) yield { key, size: size.size }; // undefined: deleted since the directory was read
      }
    }
  }

  /**
   * tus uploads as files under the root (`tus/<id>`, with the store's `tus/<id>.json`): `@tus/file-store`, which
   * appends each request's bytes to the file, so what arrived before a connection dropped is kept.
   */
  resumable(): ResumableUploads {
    if (this.resumableUploads) return this.resumableUploads;
    const store = new FileStore({ directory: this.root });
    this.resumableUploads = {
      store,
      idOfKey: (key) => key,
      keyOfId: (id) => id,
      read: (key) => Promise.resolve(store.read(key)),
      remove: async (key) => {
        assertObjectKey(key);
        try {
          await store.remove(key);
        } catch (error) {
          if (!isTusNotFound(error)) throw error;
        }
        await unlink(join(this.root, `${key}.json`)).catch((error: unknown) => {
          if (!isMissing(error)) throw error;
        });
      },
    };
    return this.resumableUploads;
  }

  /**
   * Deletes the temp files that writes left behind by a crash (or a kill) mid-`put`: those last modified more
   * than `olderThanMs` ago. Returns how many it deleted. `olderThanMs` must be longer than any upload takes: a
   * write still going on that long would lose its temp file and fail.
   */
  async removeStaleTemp(olderThanMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tempDirectory);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const path = join(this.tempDirectory, name);
      try {
        const stats = await lstat(path);
        if (!stats.isFile() || stats.mtimeMs > cutoff) continue;
        await unlink(path);
        removed++;
      } catch (error) {
        if (!isMissing(error)) throw error; // gone already: renamed into place, or removed by another sweep
      }
    }
    return removed;
  }

  /** The file of `key`, after checking the key cannot leave the root or land in the temp directory. */
  private pathOf(key: string): string {
    assertObjectKey(key);
    if (key === TEMP_DIRECTORY || key.startsWith(`${TEMP_DIRECTORY}/`)) {
      throw new InvalidObjectKeyError(key, 'it names the disk backend’s temp directory');
    }
    return join(this.root, key);
  }
}
