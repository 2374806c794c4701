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
    logLevel: logLevel ?? 'info',
  };
}
