// Only what opening the database needs is imported up front; the rest of the server is imported while the
// database opens (see `start`).
import type { createDemoTenantOnFirstStart } from './bootstrap.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { DataDirLockedError } from './db/data-dir-lock.ts';
import { configuredSecrets, createLogger } from './logger.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { closeOutboundAgents } from './outbound/send-outbound.ts';

/** In-flight requests get this long to finish after SIGTERM/SIGINT before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

function welcomeText(
  baseUrl: string,
  adminToken: string | null,
  demo: Awaited<ReturnType<typeof createDemoTenantOnFirstStart>>,
  secretsFile: string | null,
): string {
  const lines = ['', `Parley is running at ${baseUrl}  (API docs: ${baseUrl}/docs)`, ''];
  if (secretsFile !== null) {
    lines.push(
      `The credentials below are also saved in ${secretsFile} (readable only by you):`,
      'store them somewhere safe, then delete that file.',
      '',
    );
  }
  if (adminToken !== null) {
    lines.push(
      'Operator token (shown once; set PARLEY_ADMIN_TOKEN to choose your own):',
      `  ${adminToken}`,
      '',
    );
  }
  if (demo !== null) {
    const key = demo.api_key.secret;
    lines.push(
      `A "demo" tenant was created (id ${demo.tenant.id}). Its api key (shown once):`,
      `  ${key}`,
      '',
      'Try it: mint a user token for "alice", then call GET /v1/me as alice:',
      `  TOKEN=$(curl -s -X POST ${baseUrl}/v1/users/alice/tokens -H "Authorization: Bearer ${key}" \\`,
      `    | node -pe "JSON.parse(require('fs').readFileSync(0, 'utf8')).token")`,
      `  curl -s ${baseUrl}/v1/me -H "Authorization: Bearer $TOKEN"`,
      '',
    );
  }
  return lines.join('\n');
}

/** The server's modules beyond the database: Fastify, the routes and the real-time gateway. */
const importServer = () =>
  Promise.all([
    import('./admin-token.ts'),
    import('./app.ts'),
    import('./bootstrap.ts'),
    import('./first-start-secrets.ts'),
    import('./modules/tenants/tenants.service.ts'),
    import('./realtime/bus.ts'),
    import('./redis.ts'),
    import('./storage/open-storage.ts'),
  ]);

async function start(config: Config): Promise<void> {
  // A reader of stdout or stderr that has gone away must not end the server: the logger copes on its own
  // (src/logger.ts); this covers the start banner and the messages written directly.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const logger = createLogger(config.logLevel, 'stdout', configuredSecrets(config));
  // The database opens (the embedded one compiles its WebAssembly, about half a second) while the server's
  // modules load (about as long), instead of one after the other.
  const opening = openRuntime(config, logger);
  let modules: Awaited<ReturnType<typeof importServer>>;
  let runtime: Runtime;
  try {
    modules = await importServer();
  } finally {
    runtime = await opening;
  }
  const [
    { resolveAdminToken },
    ,
    { createDemoTenantOnFirstStart },
    { saveFirstStartSecrets },
    { createTenantsService },
  ] = modules;
  const adminToken = await resolveAdminToken(runtime.db.orm, config.adminToken);
  const demo = await createDemoTenantOnFirstStart(
    runtime.db.orm,
    // Before the server listens: no process has cached anything of the demo tenant yet.
    createTenantsService({
      orm: runtime.db.orm,
      serverKey: runtime.serverKey,
      onCredentialsChanged: () => {},
    }),
  );
  let secretsFile: string | null = null;
  if (adminToken.generated !== null || demo !== null) {
    try {
      secretsFile = saveFirstStartSecrets(config.dataDir, {
        adminToken: adminToken.generated,
        demo: demo === null ? null : { tenantId: demo.tenant.id, apiKey: demo.api_key.secret },
      });
    } catch (error) {
      logger.warn({ err: error, dataDir: config.dataDir }, 'could not save the first-start credentials');
    }
  }
  try {
    await serve(config, logger, runtime, modules, adminToken, demo, secretsFile);
  } catch (error) {
    if (secretsFile !== null) {
      process.stderr.write(
        `parley: the operator token and demo api key this start generated are saved in ${secretsFile}\n`,
      );
    }
    throw error;
  }
}

/** Everything after the credentials: the bus, the app, signals, listen and the banner. */
async function serve(
  config: Config,
  logger: ReturnType<typeof createLogger>,
  runtime: Runtime,
  modules: Awaited<ReturnType<typeof importServer>>,
  adminToken: { hash: string; generated: string | null },
  demo: Awaited<ReturnType<typeof createDemoTenantOnFirstStart>>,
  secretsFile: string | null,
): Promise<void> {
  const [
    { storedAdminTokenHash },
    { buildApp },
    ,
    ,
    ,
    { createLocalBus, createRedisBus },
    { createLimitsRedis, closeLimitsRedis },
    { openStorage },
  ] = modules;
  const storage = openStorage(config.attachments.storage);
  const bus =
    config.redisUrl === undefined
      ? createLocalBus()
      : createRedisBus(config.redisUrl, (error) => logger.warn({ err: error }, 'redis bus error'));
  const limitsRedis =
    config.redisUrl === undefined
      ? undefined
      : createLimitsRedis(config.redisUrl, (error) => logger.warn({ err: error }, 'redis limits error'));
  const app = await buildApp({
    db: runtime.db,
    serverKey: runtime.serverKey,
    // The stored token can be rotated (`parley admin-token rotate`): read it again every few seconds.
    adminTokenHash:
      config.adminToken === undefined
        ? storedAdminTokenHash(runtime.db.orm, adminToken.hash)
        : adminToken.hash,
    logger,
    bus,
    eventRetentionDays: config.eventRetentionDays,
    outbound: config.outbound,
    vapid: config.vapid,
    realtime: config,
    rateLimits: config.rateLimits,
    httpTimeouts: config.httpTimeouts,
    ...(limitsRedis === undefined ? {} : { limitsRedis }),
    maxTokenTtlSeconds: config.maxTokenTtlSeconds,
    attachments: { storage, limits: config.attachments.limits },
    demo: { enabled: config.demo },
    hubTimings: {
      offlineAfterMs: config.presence.offlineAfterMs,
      presenceTtlMs: config.presence.ttlMs,
      presenceRenewMs: config.presence.renewMs,
    },
  });

  let isClosing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (isClosing) return;
    isClosing = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    setTimeout(() => {
      logger.error('in-flight requests did not finish in time; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
    app
      .close()
      .then(() => bus.close())
      .then(() => closeOutboundAgents())
      .then(() => (limitsRedis === undefined ? undefined : closeLimitsRedis(limitsRedis)))
      .then(() => storage.close?.())
      .then(() => runtime.close())
      .then(() => {
        logger.info('shut down cleanly');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const baseUrl = `http://${host}:${port}`;
  process.stdout.write(`${welcomeText(baseUrl, adminToken.generated, demo, secretsFile)}\n`);
  if (config.demo) {
    process.stdout.write(
      `Web demo: ${baseUrl}/demo/  (sign in as alice, bob, carol or dave; two windows to chat; PARLEY_DEMO=false turns it off)\n\n`,
    );
  }
}

try {
  await start(loadConfig());
} catch (error) {
  if (error instanceof ConfigError || error instanceof DataDirLockedError) {
    process.stderr.write(`parley: ${error.message}\n`);
  } else {
    process.stderr.write(
      `parley: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
}
