import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { OpenAPIV3_1 } from 'openapi-types';
import swaggerUi from '@fastify/swagger-ui';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Server } from 'node:http';
import Fastify, { type FastifyHttpOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  DEFAULT_HTTP_TIMEOUTS,
  DEFAULT_RATE_LIMITS,
  type HttpTimeouts,
  type RateLimits,
  type AttachmentLimits,
  type VapidConfig,
} from './config.ts';
import type { Database } from './db/client.ts';
import { handleError, ProblemSchema, sendProblem } from './errors.ts';
import type { App } from './http/app-types.ts';
import { registerAuth } from './http/auth.ts';
import { registerCors } from './http/cors.ts';
import { finishOpenApiDocument } from './http/openapi-document.ts';
import { registerOptionalBodies } from './http/optional-body.ts';
import { PACKAGE_LICENSE, PACKAGE_VERSION } from './package-info.ts';
import { registerIdempotency } from './http/idempotency.ts';
import { registerMetrics } from './http/metrics.ts';
import { registerRateLimits } from './http/rate-limit.ts';
import { buildLazySerializer, createValidatorCompiler, registerJsonParser } from './http/validation.ts';
import { registerAuthRoutes } from './modules/auth/auth.routes.ts';
import { registerConversationRoutes } from './modules/conversations/conversations.routes.ts';
import { registerMessageRoutes } from './modules/messages/messages.routes.ts';
import { createMessagesService } from './modules/messages/messages.service.ts';
import { registerPinRoutes } from './modules/pins/pins.routes.ts';
import { createPinsService } from './modules/pins/pins.service.ts';
import { registerReactionRoutes } from './modules/reactions/reactions.routes.ts';
import { createReactionsService } from './modules/reactions/reactions.service.ts';
import { registerReadRoutes } from './modules/reads/reads.routes.ts';
import { createReadsService } from './modules/reads/reads.service.ts';
import { registerSearchRoutes } from './modules/search/search.routes.ts';
import { createSearchService } from './modules/search/search.service.ts';
import { registerSyncRoutes } from './modules/sync/sync.routes.ts';
import { createDemoService } from './modules/demo/demo.service.ts';
import { registerDemoRoutes } from './modules/demo/demo.routes.ts';
import { createSyncService } from './modules/sync/sync.service.ts';
import { createEventLog } from './modules/events/event-log.ts';
import type { Bus } from './modules/events/events.bus.ts';
import { ConnectionLimits } from './realtime/connection-limits.ts';
import { registerGateway, type GatewayLimits } from './realtime/gateway.ts';
import type { HubTimings } from './realtime/connection.ts';
import { Hub } from './realtime/hub.ts';
import { scheduleEventRetention } from './jobs/retention.ts';
import { createConversationsService } from './modules/conversations/conversations.service.ts';
import { createAuthService } from './modules/auth/auth.service.ts';
import {
  CredentialCache,
  type CredentialCacheOptions,
  type CredentialChange,
} from './modules/auth/credential-cache.ts';
import { registerSystemRoutes } from './modules/system/system.routes.ts';
import { registerTenantRoutes } from './modules/tenants/tenants.routes.ts';
import { createTenantsService } from './modules/tenants/tenants.service.ts';
import { registerUserRoutes } from './modules/users/users.routes.ts';
import { registerWebhookRoutes } from './modules/webhooks/webhooks.routes.ts';
import { webhookOperations } from './modules/webhooks/webhooks.openapi.ts';
import { createWebhooks, type BackgroundWorkTimings } from './jobs/webhooks-wiring.ts';
import { BackgroundWork } from './jobs/background-work.ts';
import { createPush } from './jobs/push-wiring.ts';
import { registerPushRoutes } from './modules/push/push.routes.ts';
import { registerDeviceRoutes } from './modules/devices/devices.routes.ts';
import { createDevicesService } from './modules/devices/devices.service.ts';
import type { OutboundPolicy } from './outbound/outbound-url.ts';
import { createUserErasure } from './modules/users/user-erasure.ts';
import { createUserExport } from './modules/users/user-export.ts';
import { createUsersService } from './modules/users/users.service.ts';
import { createAttachments } from './jobs/attachments-wiring.ts';
import { registerAttachmentRoutes } from './modules/attachments/attachments.routes.ts';
import { registerUploadRoutes } from './modules/attachments/uploads.routes.ts';
import type { ObjectStorage } from './storage/object-storage.ts';

/** Everything the HTTP app needs, built by the caller (main.ts, tests, benchmarks). */
export interface AppDeps {
  db: Database;
  /** Master key api key secrets are derived from (see src/server-key.ts). */
  serverKey: string;
  /** SHA-256 (hex) of the operator token, or a reader of the stored one (see src/admin-token.ts). */
  adminTokenHash: string | (() => Promise<string>);
  /** pino logger; requests log with their request id. */
  logger: Logger;
  /** Cross-process fan-out: in-process by default, Redis with REDIS_URL. */
  bus: Bus;
  /** Days events are kept for /v1/sync; older cursors answer 410. */
  eventRetentionDays: number;
  /**
   * WebSocket limits, and the browser origins allowed (PARLEY_ALLOWED_ORIGINS: for the socket and for HTTP
   * CORS alike); defaults suit tests and a single user, and allow any origin.
   */
  realtime?: GatewayLimits;
  /** Delivery timings (typing expiry, offline grace, slow-consumer bound); the documented defaults if absent. */
  hubTimings?: Partial<HubTimings>;
  /** Longest lifetime of a user token (PARLEY_MAX_TOKEN_TTL_SECONDS); 30 days if absent. */
  maxTokenTtlSeconds?: number;
  /** How long authenticated keys and users are trusted without the database; the documented defaults if absent. */
  credentialCache?: CredentialCacheOptions;
  /** HTTP rate limits per user and api key; the documented defaults if absent. */
  rateLimits?: RateLimits;
  /** How long the HTTP server waits for clients; the documented defaults if absent. */
  httpTimeouts?: HttpTimeouts;
  /** What webhooks may call (PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS); public addresses only if absent. */
  outbound?: OutboundPolicy;
  /** Pacing of background work (webhook retries, sweeps); the contract's and documented defaults if absent. */
  backgroundWork?: BackgroundWorkTimings;
  /** The VAPID keys and subject Web Push is signed with (PARLEY_VAPID_*); generated and stored if absent. */
  vapid?: VapidConfig;
  /** Where attachment bytes are stored, and the limits of uploads and links (docs/ATTACHMENTS.md). */
  attachments: { storage: ObjectStorage; limits: AttachmentLimits };
  /**
   * Where rate limits and socket counts are kept, so every process of a deployment shares them (REDIS_URL;
   * see src/redis.ts). Without it each process counts alone, in memory.
   */
  limitsRedis?: Redis;
  /** The web demo at /demo/ (PARLEY_DEMO; docs/DEMO.md): off if absent. */
  demo?: { enabled: boolean; assetsDir?: string };
}

const DEFAULT_LIMITS: GatewayLimits = {
  allowedOrigins: [],
  wsMaxConnectionsPerUser: 20,
  wsMaxFramesPerSecond: 20,
};

/** Largest request body accepted; larger ones answer 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;
const INCOMING_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const API_DESCRIPTION = `Parley: a self-hostable, multi-tenant messaging backend.

Three kinds of caller send \`Authorization: Bearer …\`: the **operator** (PARLEY_ADMIN_TOKEN, /v1/admin only),
a **tenant backend** (an api key secret; add \`X-Parley-User: <user id>\` to act as that user) and an
**end user** (an HS256 JWT signed with an api key secret: header \`kid\` = key id, claims \`sub\`, \`exp\`).
Errors are RFC 9457 \`application/problem+json\` with a stable \`code\`. Every mutating request accepts
\`Idempotency-Key\`.`;

/**
 * The HTTP server's timeouts as Fastify and Node take them. Node checks the headers and request timeouts
 * only every `connectionsCheckingInterval` (30 s by default), so that is made a fraction of the shorter one:
 * a trickling client is cut off close to its bound, not up to 30 s after it.
 */
function serverTimeoutOptions(timeouts: HttpTimeouts): FastifyHttpOptions<Server> {
  const bounds = [timeouts.headersMs, timeouts.requestMs].filter((bound) => bound > 0);
  const checkEveryMs = Math.min(5000, Math.max(100, Math.floor(Math.min(30_000, ...bounds) / 4)));
  return {
    // Fastify passes `http` to http.createServer: the headers timeout and the checking interval live there.
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: checkEveryMs },
    requestTimeout: timeouts.requestMs,
    connectionTimeout: timeouts.idleMs,
    keepAliveTimeout: timeouts.keepAliveMs,
  };
}

/** Builds the Fastify app with every plugin and module registered explicitly. Call `ready()` or `listen()`. */
export async function buildApp(deps: AppDeps): Promise<App> {
  const options: FastifyHttpOptions<Server> = {
    ...serverTimeoutOptions(deps.httpTimeouts ?? DEFAULT_HTTP_TIMEOUTS),
    loggerInstance: deps.logger,
    genReqId: (request) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && INCOMING_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    bodyLimit: BODY_LIMIT_BYTES,
    schemaController: { compilersFactory: { buildSerializer: buildLazySerializer } },
    routerOptions: { maxParamLength: 512 },
    // Errors the router raises before any hook runs (malformed URL, overlong parameter).
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      void sendProblem(reply, 'validation_failed', error.message);
    },
  };
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(handleError);
  // JSON is the only body format; anything else is 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  registerJsonParser(app);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );
  app.addSchema(ProblemSchema);

  const metrics = registerMetrics(app);
  const events = createEventLog(deps.bus);
  const credentials = new CredentialCache(deps.credentialCache);
  const stopForgetting = deps.bus.subscribe((message) => {
    if (message.kind === 'credentials') credentials.forget(message.change);
  });
  // Forgotten here at once (before the response), then in every other process through the bus.
  const onCredentialsChanged = (change: CredentialChange) => {
    credentials.forget(change);
    deps.bus.publish({ kind: 'credentials', change });
  };
  const users = createUsersService({ orm: deps.db.orm });
  const tenants = createTenantsService({ orm: deps.db.orm, serverKey: deps.serverKey, onCredentialsChanged });
  const auth = createAuthService({
    orm: deps.db.orm,
    serverKey: deps.serverKey,
    adminTokenHash: deps.adminTokenHash,
    users,
    cache: credentials,
    warn: (message, details) => app.log.warn(details, message),
    ...(deps.maxTokenTtlSeconds === undefined ? {} : { maxTokenTtlSeconds: deps.maxTokenTtlSeconds }),
  });
  const limits = deps.realtime ?? DEFAULT_LIMITS;
  // Before authentication and rate limits: a preflight carries no credentials, and a browser must be able to
  // read their refusals (401, 429) too.
  await registerCors(app, limits.allowedOrigins);
  registerAuth(app, auth);
  await registerRateLimits(app, deps.rateLimits ?? DEFAULT_RATE_LIMITS, deps.limitsRedis);
  registerIdempotency(app, deps.db.orm, deps.serverKey);
  registerOptionalBodies(app);

  // Plugins registered after the hooks and decorators above, so their routes (/docs) get them too.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Parley API', version: '1', description: API_DESCRIPTION },
      // Plain JSON built from the event contract; @fastify/swagger types it as OpenAPI path items.
      webhooks: webhookOperations() as Record<string, OpenAPIV3_1.PathItemObject>,
      components: {
        securitySchemes: {
          operatorToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'The operator token (PARLEY_ADMIN_TOKEN)',
          },
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'A tenant api key secret (psk_…); with X-Parley-User it acts as that user',
          },
          userToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'A user token: a JWT signed by an api key, checked as RFC8725 (JWT best practices) asks: HS256 ' +
              'only (never `none`), `kid` naming the key, `sub` and `exp` required, the lifetime capped ' +
              '(PARLEY_MAX_TOKEN_TTL_SECONDS)',
          },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) =>
        typeof json.$id === 'string' ? json.$id : `def-${index}`,
    },
    // Parley asks for OpenAPI (above), never Swagger 2: the document is always `openapiObject`.
    transformObject: (document) =>
      'openapiObject' in document
        ? finishOpenApiDocument(document.openapiObject, {
            version: PACKAGE_VERSION,
            license: PACKAGE_LICENSE,
          })
        : document.swaggerObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  registerSystemRoutes(app, { db: deps.db, bus: deps.bus, metrics });
  registerTenantRoutes(app, tenants);
  registerUserRoutes(app, {
    users,
    erasure: createUserErasure({ orm: deps.db.orm, events, onCredentialsChanged }),
    exporter: createUserExport({ orm: deps.db.orm }),
  });
  registerAuthRoutes(app, auth);
  const orm = deps.db.orm;
  const timings = deps.backgroundWork ?? {};
  const background = new BackgroundWork({
    orm,
    bus: deps.bus,
    log: app.log,
    metrics,
    ...(timings.sweepEveryMs === undefined ? {} : { sweepEveryMs: timings.sweepEveryMs }),
    ...(timings.sendEveryMs === undefined ? {} : { sendEveryMs: timings.sendEveryMs }),
  });
  const {
    attachments,
    links,
    uploads,
    direct,
    close: closeAttachments,
  } = createAttachments({
    orm,
    background,
    events,
    bus: deps.bus,
    storage: deps.attachments.storage,
    limits: deps.attachments.limits,
    serverKey: deps.serverKey,
    log: app.log,
  });
  await app.register(multipart, {
    // The file name as the client sent it: one holding a path is refused (400), not quietly cut to its end.
    preservePath: true,
    limits: {
      // Parley counts a file's bytes itself, as it stores them (413 past the limit); busboy must not cut first.
      fileSize: deps.attachments.limits.maxFileBytes + 1,
      files: 2,
      fields: 4,
      fieldSize: 4096,
      parts: 6,
      headerPairs: 20,
    },
  });
  registerAttachmentRoutes(app, attachments, direct, deps.attachments.storage);
  await registerUploadRoutes(app, uploads);
  app.addHook('onClose', () => closeAttachments());
  const messages = createMessagesService({
    orm,
    events,
    links,
    sendBatchesInFlight: deps.db.sendBatchesInFlight,
  });
  const reads = createReadsService({ orm, events });
  const conversations = createConversationsService({ orm, events, links });
  registerConversationRoutes(app, conversations);
  registerMessageRoutes(app, messages);
  registerReactionRoutes(app, createReactionsService({ orm, events, links }));
  registerPinRoutes(app, createPinsService({ orm, events, links }));
  registerReadRoutes(app, reads);
  registerSearchRoutes(app, createSearchService({ orm, links }));
  registerSyncRoutes(app, createSyncService({ orm, retentionDays: deps.eventRetentionDays }));
  if (deps.demo?.enabled === true) {
    const demo = createDemoService({ orm, tenants, users, conversations, messages, auth });
    await registerDemoRoutes(app, demo, deps.demo.assetsDir);
  }
  const hub = new Hub({
    orm,
    feedOrm: deps.db.deliveryOrm,
    bus: deps.bus,
    log: app.log,
    timings: deps.hubTimings,
    services: { conversations, tenants, users },
  });
  const outbound = deps.outbound ?? { allowPrivateNetworks: false };
  const webhookWork = createWebhooks({
    orm,
    background,
    serverKey: deps.serverKey,
    metrics,
    outbound,
    timings,
  });
  registerWebhookRoutes(app, webhookWork.webhooks);
  const pushWork = createPush({
    orm,
    background,
    serverKey: deps.serverKey,
    metrics,
    outbound,
    timings,
    ...(deps.vapid === undefined ? {} : { vapid: deps.vapid }),
    // Presence is the hub's (src/realtime); the push module is only asked.
    isOnline: (tenantId, userId) => hub.isOnline(tenantId, userId),
  });
  registerPushRoutes(app, pushWork.push);
  registerDeviceRoutes(app, createDevicesService({ orm }));

  const stopRetention = scheduleEventRetention(orm, deps.eventRetentionDays, app.log);
  const connectionLimits = new ConnectionLimits(
    {
      perUser: limits.wsMaxConnectionsPerUser,
      perTenant: limits.wsMaxConnectionsPerTenant ?? Number.POSITIVE_INFINITY,
    },
    { redis: deps.limitsRedis, processId: hub.processId, log: app.log },
  );
  background.start();
  app.addHook('onClose', async () => {
    webhookWork.close();
    pushWork.close();
    await background.close();
    stopForgetting();
    stopRetention();
    hub.close();
    connectionLimits.close();
  });
  registerGateway(app, {
    hub,
    auth,
    messages,
    reads,
    limits,
    connectionLimits,
    retentionDays: deps.eventRetentionDays,
  });
  return app;
}
