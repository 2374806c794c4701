import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { E2eeStore } from './store.js';

/**
 * A store in one JSON file, for a device in Node (a bot, a desktop app, a CLI). The file holds the device's
 * private keys: it is written with mode 0600, whole, to a temporary file renamed over it, so a crash leaves
 * the old contents or the new, never half. Writes are made one after another; one process per file.
 */
export class FileStore implements E2eeStore {
  readonly #file: string;
  #values: Promise<Map<string, string>> | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = path.resolve(file);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#load()).get(key);
  }

  set(key: string, value: string): Promise<void> {
    return this.#change((values) => values.set(key, value));
  }

  delete(key: string): Promise<void> {
    return this.#change((values) => values.delete(key));
  }

  #load(): Promise<Map<string, string>> {
    this.#values ??= readFile(this.#file, 'utf8').then(
      (text) => new Map(Object.entries(JSON.parse(text) as Record<string, string>)),
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map<string, string>();
        throw error;
      },
    );
    return this.#values;
  }

  #change(apply: (values: Map<string, string>) => void): Promise<void> {
    const write = this.#writing.then(async () => {
      const values = await this.#load();
      apply(values);
      await mkdir(path.dirname(this.#file), { recursive: true });
      const temporary = `${this.#file}.${randomUUID()}.tmp`;
      await writeFile(temporary, JSON.stringify(Object.fromEntries(values)), { mode: 0o600 });
      await rename(temporary, this.#file);
    });
    // The next write waits for this one, whether it succeeded or not; the caller gets its failure.
    this.#writing = write.catch(() => undefined);
    return write;
  }
}
