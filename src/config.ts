import path from 'node:path';
import type { OutboundPolicy } from './outbound/outbound-url.ts';

/** Validated process configuration. The only place that reads `process.env`; see docs/CONFIG.md. */
export interface Config {
  /** TCP port the HTTP server listens on. */
  port: number;
  /** Interface to bind; 127.0.0.1 unless the operator opens it up. */
  host: string;
  /** Directory for the embedded database and generated secrets. */
  dataDir: string;
  /** PostgreSQL connection string; when absent the embedded database (PGlite) is used. */
  databaseUrl: string | undefined;
  /** Connections in the PostgreSQL pool. */
  databasePoolSize: number;
  /** Operator token for /v1/admin; when absent one is generated on first start and stored hashed. */
  adminToken: string | undefined;
  /** Master key that API key secrets are derived from; when absent one is generated into dataDir. */
  secretKey: string | undefined;
  /** Redis for cross-process fan-out; when absent one process serves alone with an in-process bus. */
  redisUrl: string | undefined;
  /** Days events are kept for /v1/sync; older cursors answer 410. */
  eventRetentionDays: number;
  /** Browser origins allowed to open a WebSocket; empty means any (clients without Origin always may). */
  allowedOrigins: string[];
  /** Open sockets one user may have at once, across processes with Redis; the next is closed with 4429. */
  wsMaxConnectionsPerUser: number;
  /** Open sockets one tenant may have at once, across processes with Redis; the next is closed with 4429. */
  wsMaxConnectionsPerTenant: number;
  /** Open sockets this process holds at once; the next upgrade is answered 429. */
  wsMaxConnectionsPerProcess: number;
  /** Frames a socket may send per second, sustained (bursts up to twice that); more get rate_limited. */
  wsMaxFramesPerSecond: number;
  /** HTTP request budgets per api key and per user (docs/CONFIG.md, "Limits"). */
  rateLimits: RateLimits;
  /** How long the HTTP server waits for a client (docs/CONFIG.md, "Limits"). */
  httpTimeouts: HttpTimeouts;
  /** Longest lifetime of a user token, minted or signed by a tenant itself; a longer one answers 401. */
  maxTokenTtlSeconds: number;
  /** How presence ends (docs/REALTIME.md, "Presence"). */
  presence: PresenceTimings;
  /** Which addresses webhook and Web Push requests may reach (docs/OUTBOUND.md). */
  outbound: OutboundPolicy;
  /** Whether the web demo is served at /demo/ (PARLEY_DEMO; docs/DEMO.md). */
  demo: boolean;
  /** The VAPID key pair (generated and stored when absent) and subject Web Push is signed with (docs/PUSH.md). */
  vapid: VapidConfig;
  /** Where attachments are stored and how big they may be (docs/ATTACHMENTS.md). */
  attachments: AttachmentsConfig;
  /** pino level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Where attachment bytes go (PARLEY_STORAGE*, PARLEY_S3_*; docs/ATTACHMENTS.md, "Storage"). */
export type StorageConfig =
  | { kind: 'disk'; root: string }
  | {
      kind: 's3';
      endpoint: string | undefined;
      region: string;
      bucket: string;
      accessKeyId: string | undefined;
      secretAccessKey: string | undefined;
      forcePathStyle: boolean;
      prefix: string | undefined;
    };

/** What uploads may be and how links last (docs/ATTACHMENTS.md). */
export interface AttachmentLimits {
  /** The most bytes one file may have; a larger upload answers 413. */
  maxFileBytes: number;
  /** A tenant's storage quota unless the operator set its own; an upload beyond it answers 507. */
  defaultQuotaBytes: number;
  /** How long a signed download link works. */
  linkTtlSeconds: number;
  /** The most pixels an image may have to be processed; a larger one is rejected unread. */
  maxImagePixels: number;
}

export interface AttachmentsConfig {
  storage: StorageConfig;
  limits: AttachmentLimits;
}

/** The limits when nothing is configured (docs/CONFIG.md). */
export const DEFAULT_ATTACHMENT_LIMITS: AttachmentLimits = {
  maxFileBytes: 100 * 1024 * 1024,
  defaultQuotaBytes: 10 * 1024 * 1024 * 1024,
  linkTtlSeconds: 3600,
  maxImagePixels: 40_000_000,
};

/** The VAPID configuration Web Push is signed with (PARLEY_VAPID_*; docs/PUSH.md). */
export interface VapidConfig {
  /** The key pair (base64url); generated once and stored, sealed, in the database when absent. */
  keys: { publicKey: string; privateKey: string } | undefined;
  /** `mailto:` or `https:`: whom push services contact about this server's traffic. */
  subject: string;
}

/** The subject when PARLEY_VAPID_SUBJECT is not set: one web-push and push services accept. */
export const DEFAULT_VAPID_SUBJECT = 'mailto:admin@localhost';

/** Requests one caller may make per budget in a window; 0 is no limit. */
export interface RateBudgets {
  /** GET and HEAD. */
  reads: number;
  /** Sending a message: `POST /v1/conversations/{id}/messages`, `POST /v1/direct-messages`. */
  sends: number;
  /** Every other POST, PUT, PATCH and DELETE. */
  writes: number;
  /** Uploading a file: `POST /v1/attachments`. */
  uploads: number;
}

/** HTTP rate limits: a fixed window, counted per user (when a request acts as one) or else per api key. */
export interface RateLimits {
  windowMs: number;
  user: RateBudgets;
  key: RateBudgets;
}

/** When a user is announced offline, in milliseconds. */
export interface PresenceTimings {
  /** After a user's last socket on a process closes, the wait before that process announces it offline. */
  offlineAfterMs: number;
  /**
   * How long a process's word that a user is online lasts unless renewed: a process that dies without a
   * word (kill -9) leaves its users online this long at most.
   */
  ttlMs: number;
  /** How often a process renews its word: 2/7 of the TTL, at most 10 s, so two renewals can be lost. */
  renewMs: number;
}

/** Timeouts of the HTTP server, in milliseconds (0 disables one). */
export interface HttpTimeouts {
  /** From the connection (or the end of the previous request) until the request's headers are complete. */
  headersMs: number;
  /** From the connection until the whole request, body included, has arrived. */
  requestMs: number;
  /** A socket with no traffic either way for this long, mid-request, is closed. */
  idleMs: number;
  /** A kept-alive connection with no request for this long is closed (at least 1 s). */
  keepAliveMs: number;
}

/** The documented defaults (docs/CONFIG.md): far above what a person does, and above the benchmarks' rates. */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  windowMs: 60_000,
  user: { reads: 3000, sends: 1200, writes: 1200, uploads: 120 },
  key: { reads: 60_000, sends: 60_000, writes: 60_000, uploads: 60_000 },
};

/** The documented defaults: a client that trickles its headers or body is cut off within seconds. */
export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 10_000,
  requestMs: 30_000,
  idleMs: 30_000,
  // Above the 60 s idle timeout of common load balancers, so they never reuse a connection Parley just closed.
  keepAliveMs: 72_000,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Thrown when the environment is invalid; carries every problem found, not just the first. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates configuration from an environment, reporting all errors at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];

  const readInt = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };
  const readOptional = (name: string): string | undefined => {
    const raw = env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  };

  const port = readInt('PORT', 3000, 0, 65535);
  const databasePoolSize = readInt('DATABASE_POOL_SIZE', 10, 1, 1000);
  const host = readOptional('HOST') ?? '127.0.0.1';
  const dataDir = path.resolve(readOptional('PARLEY_DATA_DIR') ?? './data');

  const databaseUrl = readOptional('DATABASE_URL');
  if (databaseUrl !== undefined) {
    let isValid: boolean;
    try {
      const url = new URL(databaseUrl);
      isValid = url.protocol === 'postgres:' || url.protocol === 'postgresql:';
    } catch {
      isValid = false;
    }
    if (!isValid) problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }

  const redisUrl = readOptional('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/./.test(redisUrl))
    problems.push('REDIS_URL must be a redis:// or rediss:// URL');
  const eventRetentionDays = readInt('PARLEY_EVENT_RETENTION_DAYS', 30, 1, 3650);
  const wsMaxConnectionsPerUser = readInt('PARLEY_WS_MAX_CONNECTIONS_PER_USER', 20, 1, 10_000);
  const wsMaxFramesPerSecond = readInt('PARLEY_WS_MAX_FRAMES_PER_SECOND', 20, 1, 10_000);
  const wsMaxConnectionsPerTenant = readInt('PARLEY_WS_MAX_CONNECTIONS_PER_TENANT', 50_000, 1, 10_000_000);
  const wsMaxConnectionsPerProcess = readInt('PARLEY_WS_MAX_CONNECTIONS_PER_PROCESS', 50_000, 1, 10_000_000);

  const readBudgets = (kind: 'USER' | 'KEY', fallback: RateBudgets): RateBudgets => ({
    reads: readInt(`PARLEY_RATE_LIMIT_${kind}_READS`, fallback.reads, 0, 1_000_000_000),
    sends: readInt(`PARLEY_RATE_LIMIT_${kind}_SENDS`, fallback.sends, 0, 1_000_000_000),
    writes: readInt(`PARLEY_RATE_LIMIT_${kind}_WRITES`, fallback.writes, 0, 1_000_000_000),
    uploads: readInt(`PARLEY_RATE_LIMIT_${kind}_UPLOADS`, fallback.uploads, 0, 1_000_000_000),
  });
  const rateLimits: RateLimits = {
    windowMs:
      readInt('PARLEY_RATE_LIMIT_WINDOW_SECONDS', DEFAULT_RATE_LIMITS.windowMs / 1000, 1, 86_400) * 1000,
    user: readBudgets('USER', DEFAULT_RATE_LIMITS.user),
    key: readBudgets('KEY', DEFAULT_RATE_LIMITS.key),
  };

  const readSeconds = (name: string, fallbackMs: number, min = 0) =>
    readInt(name, fallbackMs / 1000, min, 3600) * 1000;
  const httpTimeouts: HttpTimeouts = {
    headersMs: readSeconds('PARLEY_HTTP_HEADERS_TIMEOUT_SECONDS', DEFAULT_HTTP_TIMEOUTS.headersMs),
    requestMs: readSeconds('PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS', DEFAULT_HTTP_TIMEOUTS.requestMs),
    idleMs: readSeconds('PARLEY_HTTP_IDLE_TIMEOUT_SECONDS', DEFAULT_HTTP_TIMEOUTS.idleMs),
    keepAliveMs: readSeconds('PARLEY_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', DEFAULT_HTTP_TIMEOUTS.keepAliveMs, 1),
  };
  // Node refuses a headers timeout longer than the request timeout (the headers are part of the request).
  if (httpTimeouts.requestMs > 0 && httpTimeouts.headersMs > httpTimeouts.requestMs)
    problems.push(
      'PARLEY_HTTP_HEADERS_TIMEOUT_SECONDS must not be more than PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS',
    );

  const presenceTtlMs = readInt('PARLEY_PRESENCE_TTL_SECONDS', 35, 2, 3600) * 1000;
  const presence: PresenceTimings = {
    offlineAfterMs: readInt('PARLEY_PRESENCE_OFFLINE_GRACE_SECONDS', 30, 0, 3600) * 1000,
    ttlMs: presenceTtlMs,
    renewMs: Math.min(10_000, Math.round((presenceTtlMs * 2) / 7)),
  };
  const maxTokenTtlSeconds = readInt('PARLEY_MAX_TOKEN_TTL_SECONDS', 30 * 24 * 3600, 60, 365 * 24 * 3600);
  const allowedOrigins = (readOptional('PARLEY_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
  for (const origin of allowedOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      problems.push(`PARLEY_ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com`);
  }

  const rawAllowPrivate = readOptional('PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS') ?? 'false';
  if (rawAllowPrivate !== 'true' && rawAllowPrivate !== 'false')
    problems.push(`PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS must be true or false, got "${rawAllowPrivate}"`);
  const outbound: OutboundPolicy = { allowPrivateNetworks: rawAllowPrivate === 'true' };

  // The web demo signs anyone in as its users: on by default only on the embedded database (a laptop).
  const rawDemo = readOptional('PARLEY_DEMO') ?? (databaseUrl === undefined ? 'true' : 'false');
  if (rawDemo !== 'true' && rawDemo !== 'false')
    problems.push(`PARLEY_DEMO must be true or false, got "${rawDemo}"`);
  const demo = rawDemo === 'true';

  const vapidPublicKey = readOptional('PARLEY_VAPID_PUBLIC_KEY');
  const vapidPrivateKey = readOptional('PARLEY_VAPID_PRIVATE_KEY');
  if ((vapidPublicKey === undefined) !== (vapidPrivateKey === undefined))
    problems.push('PARLEY_VAPID_PUBLIC_KEY and PARLEY_VAPID_PRIVATE_KEY are set together, or neither');
  // Base64url of an uncompressed P-256 point (65 bytes, starting 0x04) and of a 32-byte scalar.
  if (vapidPublicKey !== undefined && !/^B[A-Za-z0-9_-]{86}$/.test(vapidPublicKey))
    problems.push('PARLEY_VAPID_PUBLIC_KEY must be a P-256 public key, 87 base64url characters');
  if (vapidPrivateKey !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(vapidPrivateKey))
    problems.push('PARLEY_VAPID_PRIVATE_KEY must be a P-256 private key, 43 base64url characters');
  const vapidSubject = readOptional('PARLEY_VAPID_SUBJECT') ?? DEFAULT_VAPID_SUBJECT;
  if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/[^\s/]+(\/\S*)?)$/.test(vapidSubject))
    problems.push(`PARLEY_VAPID_SUBJECT must be a mailto: address or an https: URL, got "${vapidSubject}"`);
  const vapid: VapidConfig = {
    keys:
      vapidPublicKey === undefined || vapidPrivateKey === undefined
        ? undefined
        : { publicKey: vapidPublicKey, privateKey: vapidPrivateKey },
    subject: vapidSubject,
  };

  const adminToken = readOptional('PARLEY_ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 24) {
    problems.push('PARLEY_ADMIN_TOKEN must be at least 24 characters');
  }
  const secretKey = readOptional('PARLEY_SECRET_KEY');
  if (secretKey !== undefined && secretKey.length < 32) {
    problems.push('PARLEY_SECRET_KEY must be at least 32 characters');
  }

  const storageKind = readOptional('PARLEY_STORAGE') ?? 'disk';
  let storage: StorageConfig = {
    kind: 'disk',
    root: path.resolve(readOptional('PARLEY_STORAGE_DIR') ?? path.join(dataDir, 'attachments')),
  };
  if (storageKind === 's3') {
    const bucket = readOptional('PARLEY_S3_BUCKET');
    if (bucket === undefined) problems.push('PARLEY_S3_BUCKET is required with PARLEY_STORAGE=s3');
    const endpoint = readOptional('PARLEY_S3_ENDPOINT');
    if (endpoint !== undefined && !/^https?:\/\/./.test(endpoint))
      problems.push('PARLEY_S3_ENDPOINT must be an http:// or https:// URL');
    const accessKeyId = readOptional('PARLEY_S3_ACCESS_KEY_ID');
    const secretAccessKey = readOptional('PARLEY_S3_SECRET_ACCESS_KEY');
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined))
      problems.push('PARLEY_S3_ACCESS_KEY_ID and PARLEY_S3_SECRET_ACCESS_KEY are set together, or neither');
    const rawPathStyle = readOptional('PARLEY_S3_FORCE_PATH_STYLE') ?? 'false';
    if (rawPathStyle !== 'true' && rawPathStyle !== 'false')
      problems.push(`PARLEY_S3_FORCE_PATH_STYLE must be true or false, got "${rawPathStyle}"`);
    const prefix = readOptional('PARLEY_S3_PREFIX');
    const isPrefixSegment = (segment: string) =>
      /^[A-Za-z0-9._-]+$/.test(segment) && segment !== '.' && segment !== '..';
    if (prefix !== undefined && !prefix.replace(/\/$/, '').split('/').every(isPrefixSegment))
      problems.push(
        'PARLEY_S3_PREFIX must be path segments of letters, digits, ".", "_" and "-" (no "." or ".." segment)',
      );
    storage = {
      kind: 's3',
      endpoint,
      region: readOptional('PARLEY_S3_REGION') ?? 'us-east-1',
      bucket: bucket ?? '',
      accessKeyId,
      secretAccessKey,
      forcePathStyle: rawPathStyle === 'true',
      prefix,
    };
  } else if (storageKind !== 'disk') {
    problems.push(`PARLEY_STORAGE must be disk or s3, got "${storageKind}"`);
  }
  const attachments: AttachmentsConfig = {
    storage,
    limits: {
      maxFileBytes: readInt(
        'PARLEY_ATTACHMENT_MAX_BYTES',
        DEFAULT_ATTACHMENT_LIMITS.maxFileBytes,
        1,
        Number.MAX_SAFE_INTEGER,
      ),
      defaultQuotaBytes: readInt(
        'PARLEY_STORAGE_QUOTA_BYTES',
        DEFAULT_ATTACHMENT_LIMITS.defaultQuotaBytes,
        0,
        Number.MAX_SAFE_INTEGER,
      ),
      linkTtlSeconds: readInt(
        'PARLEY_ATTACHMENT_LINK_TTL_SECONDS',
        DEFAULT_ATTACHMENT_LIMITS.linkTtlSeconds,
        60,
        7 * 24 * 3600,
      ),
      maxImagePixels: readInt(
        'PARLEY_IMAGE_MAX_PIXELS',
        DEFAULT_ATTACHMENT_LIMITS.maxImagePixels,
        1,
        1_000_000_000,
      ),
    },
  };

  const rawLevel = readOptional('LOG_LEVEL') ?? 'info';
  const logLevel = LOG_LEVELS.find((level) => level === rawLevel);
  if (logLevel === undefined)
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${rawLevel}"`);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    dataDir,
    databaseUrl,
    databasePoolSize,
    adminToken,
    secretKey,
    redisUrl,
    eventRetentionDays,
    allowedOrigins,
    wsMaxConnectionsPerUser,
    wsMaxConnectionsPerTenant,
    wsMaxConnectionsPerProcess,
    wsMaxFramesPerSecond,
    rateLimits,
    httpTimeouts,
    maxTokenTtlSeconds,
    presence,
    outbound,
    vapid,
    attachments,
    demo,
    logLevel: logLevel ?? 'info',
  };
}
