import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DEFAULT_ATTACHMENT_LIMITS,
  type AttachmentLimits,
  type HttpTimeouts,
  type RateLimits,
  type VapidConfig,
} from '../../src/config.ts';
import { LocalDiskStorage } from '../../src/storage/local-disk-storage.ts';
import type { ObjectStorage } from '../../src/storage/object-storage.ts';
import { buildApp } from '../../src/app.ts';
import type { CredentialCacheOptions } from '../../src/modules/auth/credential-cache.ts';
import type { Bus } from '../../src/modules/events/events.bus.ts';
import { createLocalBus } from '../../src/realtime/bus.ts';
import type { GatewayLimits } from '../../src/realtime/gateway.ts';
import type { HubTimings } from '../../src/realtime/connection.ts';
import type { App } from '../../src/http/app-types.ts';
import type { BackgroundWorkTimings } from '../../src/jobs/webhooks-wiring.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { checkResponsesAgainstDocument } from './response-contract.ts';

/** A running app on the file's own database, with the operator token and server key it was built with. */
export interface TestApp {
  app: App;
  database: TestDatabase;
  adminToken: string;
  serverKey: string;
}

/** What a test may change of the app it builds; the rest is as the server builds it. */
export interface TestAppOptions {
  realtime?: GatewayLimits;
  hubTimings?: HubTimings;
  credentialCache?: CredentialCacheOptions;
  /** PARLEY_MAX_TOKEN_TTL_SECONDS; 30 days if absent. */
  maxTokenTtlSeconds?: number;
  /** Apps given the same bus (and database) behave like processes of one deployment. */
  bus?: Bus;
  rateLimits?: RateLimits;
  httpTimeouts?: HttpTimeouts;
  /** Apps given Redis connections to the same server share rate limits and socket counts. */
  limitsRedis?: Redis;
  /** Whether webhooks may call loopback (receivers in tests run there); refused if absent, as in production. */
  outbound?: { allowPrivateNetworks: boolean };
  /** Faster retries and sweeps for webhook and push tests. */
  backgroundWork?: BackgroundWorkTimings;
  /** PARLEY_VAPID_*; generated and stored in the database if absent, as in production. */
  vapid?: VapidConfig;
  /** Share these with another app on the same database; fresh ones if absent. */
  adminToken?: string;
  serverKey?: string;
  /** The app's logger, for a test that reads what was logged; silent (or TEST_LOG_LEVEL) if absent. */
  logger?: pino.Logger;
  /**
   * Where attachments are stored and the limits of uploads: the local disk in a directory of the app's own
   * (removed when it closes) and the documented limits, if absent.
   */
  attachments?: { storage?: ObjectStorage; limits?: Partial<AttachmentLimits> };
  /** The web demo at /demo/ (PARLEY_DEMO); off if absent. */
  demo?: { enabled: boolean };
}

/** Builds the real app on an existing database (the caller closes both). */
export async function buildTestApp(database: TestDatabase, options: TestAppOptions = {}): Promise<TestApp> {
  const adminToken = options.adminToken ?? `padm_${randomBytes(24).toString('base64url')}`;
  const serverKey = options.serverKey ?? randomBytes(32).toString('base64url');
  const storageDir = options.attachments?.storage
    ? undefined
    : mkdtempSync(path.join(tmpdir(), 'parley-test-storage-'));
  const storage = options.attachments?.storage ?? new LocalDiskStorage(storageDir ?? '');
  const app = await buildApp({
    attachments: { storage, limits: { ...DEFAULT_ATTACHMENT_LIMITS, ...options.attachments?.limits } },
    db: database.db,
    serverKey,
    adminTokenHash: createHash('sha256').update(adminToken).digest('hex'),
    logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    bus: options.bus ?? createLocalBus(),
    eventRetentionDays: 30,
    ...(options.realtime === undefined ? {} : { realtime: options.realtime }),
    ...(options.hubTimings === undefined ? {} : { hubTimings: options.hubTimings }),
    ...(options.credentialCache === undefined ? {} : { credentialCache: options.credentialCache }),
    ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
    ...(options.httpTimeouts === undefined ? {} : { httpTimeouts: options.httpTimeouts }),
    ...(options.limitsRedis === undefined ? {} : { limitsRedis: options.limitsRedis }),
    ...(options.maxTokenTtlSeconds === undefined ? {} : { maxTokenTtlSeconds: options.maxTokenTtlSeconds }),
    ...(options.outbound === undefined ? {} : { outbound: options.outbound }),
    ...(options.backgroundWork === undefined ? {} : { backgroundWork: options.backgroundWork }),
    ...(options.vapid === undefined ? {} : { vapid: options.vapid }),
    ...(options.demo === undefined ? {} : { demo: options.demo }),
  });
  if (storageDir !== undefined) {
    app.addHook('onClose', async () => rm(storageDir, { recursive: true, force: true }));
  }
  checkResponsesAgainstDocument(app);
  await app.ready();
  return { app, database, adminToken, serverKey };
}

/** Builds the real app on a fresh database, with optional WebSocket limits. */
export async function startTestApp(realtime?: GatewayLimits, hubTimings?: HubTimings): Promise<TestApp> {
  return buildTestApp(await createTestDatabase(), {
    ...(realtime === undefined ? {} : { realtime }),
    ...(hubTimings === undefined ? {} : { hubTimings }),
  });
}

/** fastify/demo's `build(t)`: one app per test file, started before its tests and closed after them. */
export function useTestApp(realtime?: GatewayLimits, hubTimings?: HubTimings): TestApp {
  const holder = {} as TestApp;
  beforeAll(async () => {
    Object.assign(holder, await startTestApp(realtime, hubTimings));
  });
  afterAll(async () => {
    await holder.app.close();
    await holder.database.drop();
  });
  return holder;
}

/** Makes the app listen on an ephemeral loopback port, for real sockets; returns its `ws://` base URL. */
export async function listenForSockets(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('not listening');
  return `ws://127.0.0.1:${address.port}`;
}
