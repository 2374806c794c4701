import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('has working defaults for a fresh machine', () => {
    expect(loadConfig({})).toEqual({
      port: 3000,
      host: '127.0.0.1',
      dataDir: path.resolve('./data'),
      databaseUrl: undefined,
      databasePoolSize: 10,
      adminToken: undefined,
      secretKey: undefined,
      redisUrl: undefined,
      eventRetentionDays: 30,
      allowedOrigins: [],
      wsMaxConnectionsPerUser: 20,
      wsMaxFramesPerSecond: 20,
      maxTokenTtlSeconds: 30 * 24 * 3600,
      logLevel: 'info',
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      PARLEY_DATA_DIR: '/var/lib/parley',
      DATABASE_URL: 'postgres://app@db:5432/parley',
      DATABASE_POOL_SIZE: '20',
      PARLEY_ADMIN_TOKEN: 'a'.repeat(24),
      PARLEY_SECRET_KEY: 'k'.repeat(32),
      LOG_LEVEL: 'debug',
      PARLEY_MAX_TOKEN_TTL_SECONDS: '3600',
    });
    expect(config).toMatchObject({
      maxTokenTtlSeconds: 3600,
      port: 8080,
      host: '0.0.0.0',
      dataDir: '/var/lib/parley',
      databasePoolSize: 20,
      logLevel: 'debug',
    });
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://nope',
        DATABASE_POOL_SIZE: '0',
        PARLEY_ADMIN_TOKEN: 'short',
        PARLEY_SECRET_KEY: 'short',
        LOG_LEVEL: 'loud',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(6);
    for (const name of [
      'PORT',
      'DATABASE_URL',
      'DATABASE_POOL_SIZE',
      'PARLEY_ADMIN_TOKEN',
      'PARLEY_SECRET_KEY',
      'LOG_LEVEL',
    ]) {
      expect(problems.some((problem) => problem.startsWith(name))).toBe(true);
    }
  });
});
