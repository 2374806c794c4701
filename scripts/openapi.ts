// `npm run openapi`: prints the OpenAPI 3.1 document the server serves at /openapi.json, built from the
// route schemas on an in-memory database, so it can be committed, diffed or fed to client generators.
import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { buildApp } from '../src/app.ts';
import { openDatabase } from '../src/db/client.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_ATTACHMENT_LIMITS } from '../src/config.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';
import { createLocalBus } from '../src/realtime/bus.ts';

const db = await openDatabase({});
const app = await buildApp({
  db,
  serverKey: randomBytes(32).toString('base64url'),
  adminTokenHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
  logger: pino({ level: 'silent' }),
  bus: createLocalBus(),
  eventRetentionDays: 30,
  // Never written to: nothing here uploads.
  attachments: {
    storage: new LocalDiskStorage(path.join(tmpdir(), 'parley-unused-storage')),
    limits: DEFAULT_ATTACHMENT_LIMITS,
  },
});
await app.ready();
process.stdout.write(`${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
await db.close();
