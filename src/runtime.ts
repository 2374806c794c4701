import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/client.ts';
import { lockDataDir } from './db/data-dir-lock.ts';
import { loadServerKey } from './server-key.ts';

/** What both the server and the CLI stand on: the migrated database and the server key. */
export interface Runtime {
  db: Database;
  serverKey: string;
  /** Closes the database and releases the embedded data directory. */
  close(): Promise<void>;
}

/** Opens the configured database (locking the embedded one to this process) and loads the server key. */
export async function openRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const isEmbedded = config.databaseUrl === undefined;
  const unlock = isEmbedded ? lockDataDir(config.dataDir) : () => undefined;
  try {
    const { key: serverKey, source } = loadServerKey(config.secretKey, config.dataDir);
    if (!isEmbedded && source !== 'PARLEY_SECRET_KEY') {
      logger.warn(
        { keyFile: source },
        'PARLEY_SECRET_KEY is not set: using a key file; every process serving this database must share it',
      );
    }
    const db = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: isEmbedded ? path.join(config.dataDir, 'pglite') : undefined,
      poolSize: config.databasePoolSize,
      onPoolError: (error) => logger.error({ err: error }, 'idle database connection failed'),
    });
    return {
      db,
      serverKey,
      close: async () => {
        try {
          await db.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}
