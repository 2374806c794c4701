// Builds the OpenAPI 3.1 document the server serves at /openapi.json, from the route schemas, on an
// in-memory database: for `npm run openapi` and for the client SDK's generated types
// (scripts/client-types.ts), so neither needs a running server.
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../src/app.ts';
import { DEFAULT_ATTACHMENT_LIMITS } from '../src/config.ts';
import { openDatabase } from '../src/db/client.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';

export async function buildOpenApiDocument(): Promise<Record<string, unknown>> {
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
  try {
    await app.ready();
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
    await db.close();
  }
}
