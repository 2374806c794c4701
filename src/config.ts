import path from 'node:path';

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
  /** Open sockets one user may have at once; the next is closed with 4429. */
  wsMaxConnectionsPerUser: number;
  /** Frames a socket may send per second, sustained (bursts up to twice that); more get rate_limited. */
  wsMaxFramesPerSecond: number;
  /** Longest lifetime of a user token, minted or signed by a tenant itself; a longer one answers 401. */
  maxTokenTtlSeconds: number;
  /** pino level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

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
  const maxTokenTtlSeconds = readInt('PARLEY_MAX_TOKEN_TTL_SECONDS', 30 * 24 * 3600, 60, 365 * 24 * 3600);
  const allowedOrigins = (readOptional('PARLEY_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
  for (const origin of allowedOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      problems.push(`PARLEY_ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com`);
  }

  const adminToken = readOptional('PARLEY_ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 24) {
    problems.push('PARLEY_ADMIN_TOKEN must be at least 24 characters');
  }
  const secretKey = readOptional('PARLEY_SECRET_KEY');
  if (secretKey !== undefined && secretKey.length < 32) {
    problems.push('PARLEY_SECRET_KEY must be at least 32 characters');
  }

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
    wsMaxFramesPerSecond,
    maxTokenTtlSeconds,
    logLevel: logLevel ?? 'info',
  };
}
