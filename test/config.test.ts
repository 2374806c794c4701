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
      wsMaxConnectionsPerTenant: 50_000,
      wsMaxConnectionsPerProcess: 50_000,
      wsMaxFramesPerSecond: 20,
      rateLimits: {
        windowMs: 60_000,
        user: { reads: 3000, sends: 1200, writes: 1200, uploads: 120 },
        key: { reads: 60_000, sends: 60_000, writes: 60_000, uploads: 60_000 },
      },
      httpTimeouts: { headersMs: 10_000, requestMs: 30_000, idleMs: 30_000, keepAliveMs: 72_000 },
      maxTokenTtlSeconds: 30 * 24 * 3600,
      presence: { offlineAfterMs: 30_000, ttlMs: 35_000, renewMs: 10_000 },
      outbound: { allowPrivateNetworks: false },
      vapid: { keys: undefined, subject: 'mailto:admin@localhost' },
      attachments: {
        storage: { kind: 'disk', root: path.resolve('./data/attachments') },
        limits: {
          maxFileBytes: 100 * 1024 * 1024,
          defaultQuotaBytes: 10 * 1024 * 1024 * 1024,
          linkTtlSeconds: 3600,
          maxImagePixels: 40_000_000,
        },
      },
      demo: true,
      logLevel: 'info',
    });
  });

  it('reads the attachment storage: the disk by default, S3 with its bucket and credentials together', () => {
    expect(loadConfig({ PARLEY_DATA_DIR: '/srv/parley' }).attachments.storage).toEqual({
      kind: 'disk',
      root: '/srv/parley/attachments',
    });
    expect(
      loadConfig({
        PARLEY_STORAGE: 's3',
        PARLEY_S3_BUCKET: 'chat-files',
        PARLEY_S3_ENDPOINT: 'http://127.0.0.1:9000',
        PARLEY_S3_ACCESS_KEY_ID: 'minio',
        PARLEY_S3_SECRET_ACCESS_KEY: 'minio-secret',
        PARLEY_S3_FORCE_PATH_STYLE: 'true',
        PARLEY_ATTACHMENT_MAX_BYTES: '1048576',
      }).attachments,
    ).toMatchObject({
      storage: {
        kind: 's3',
        bucket: 'chat-files',
        endpoint: 'http://127.0.0.1:9000',
        region: 'us-east-1',
        forcePathStyle: true,
        prefix: undefined,
      },
      limits: { maxFileBytes: 1_048_576 },
    });
    expect(() =>
      loadConfig({
        PARLEY_STORAGE: 's3',
        PARLEY_S3_ACCESS_KEY_ID: 'only-one',
        PARLEY_S3_FORCE_PATH_STYLE: 'yes',
        PARLEY_S3_PREFIX: '../up',
      }),
    ).toThrow(
      [
        'PARLEY_S3_BUCKET is required with PARLEY_STORAGE=s3',
        'PARLEY_S3_ACCESS_KEY_ID and PARLEY_S3_SECRET_ACCESS_KEY are set together, or neither',
        'PARLEY_S3_FORCE_PATH_STYLE must be true or false, got "yes"',
        'PARLEY_S3_PREFIX must be path segments of letters, digits, ".", "_" and "-" (no "." or ".." segment)',
      ].join('\n  - '),
    );
    expect(() => loadConfig({ PARLEY_STORAGE: 'ftp' })).toThrow(
      'PARLEY_STORAGE must be disk or s3, got "ftp"',
    );
    expect(() => loadConfig({ PARLEY_ATTACHMENT_LINK_TTL_SECONDS: '5' })).toThrow(
      'PARLEY_ATTACHMENT_LINK_TTL_SECONDS must be an integer from 60 to 604800, got "5"',
    );
  });

  it('reads the presence timings, renewing at 2/7 of the TTL', () => {
    expect(
      loadConfig({ PARLEY_PRESENCE_TTL_SECONDS: '3', PARLEY_PRESENCE_OFFLINE_GRACE_SECONDS: '0' }).presence,
    ).toEqual({ offlineAfterMs: 0, ttlMs: 3000, renewMs: 857 });
    expect(loadConfig({ PARLEY_PRESENCE_TTL_SECONDS: '3600' }).presence.renewMs).toBe(10_000);
    expect(() => loadConfig({ PARLEY_PRESENCE_TTL_SECONDS: '1' })).toThrow(
      'PARLEY_PRESENCE_TTL_SECONDS must be an integer from 2 to 3600, got "1"',
    );
  });

  it('reads the limits, with 0 for no limit', () => {
    const config = loadConfig({
      PARLEY_WS_MAX_CONNECTIONS_PER_TENANT: '500',
      PARLEY_WS_MAX_CONNECTIONS_PER_PROCESS: '1000',
      PARLEY_RATE_LIMIT_WINDOW_SECONDS: '10',
      PARLEY_RATE_LIMIT_USER_READS: '0',
      PARLEY_RATE_LIMIT_USER_SENDS: '5',
      PARLEY_RATE_LIMIT_USER_WRITES: '6',
      PARLEY_RATE_LIMIT_KEY_READS: '7',
      PARLEY_RATE_LIMIT_KEY_SENDS: '8',
      PARLEY_RATE_LIMIT_KEY_WRITES: '9',
      PARLEY_RATE_LIMIT_USER_UPLOADS: '10',
      PARLEY_RATE_LIMIT_KEY_UPLOADS: '0',
      PARLEY_HTTP_HEADERS_TIMEOUT_SECONDS: '0',
      PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS: '20',
      PARLEY_HTTP_IDLE_TIMEOUT_SECONDS: '15',
      PARLEY_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '5',
    });
    expect(config).toMatchObject({
      wsMaxConnectionsPerTenant: 500,
      wsMaxConnectionsPerProcess: 1000,
      rateLimits: {
        windowMs: 10_000,
        user: { reads: 0, sends: 5, writes: 6, uploads: 10 },
        key: { reads: 7, sends: 8, writes: 9, uploads: 0 },
      },
      httpTimeouts: { headersMs: 0, requestMs: 20_000, idleMs: 15_000, keepAliveMs: 5000 },
    });
  });

  it('refuses a headers timeout longer than the request timeout, and a keep-alive timeout of 0', () => {
    expect(() =>
      loadConfig({
        PARLEY_HTTP_HEADERS_TIMEOUT_SECONDS: '40',
        PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS: '30',
        PARLEY_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '0',
        PARLEY_RATE_LIMIT_USER_READS: '-1',
      }),
    ).toThrow(
      expect.objectContaining({
        problems: [
          'PARLEY_RATE_LIMIT_USER_READS must be an integer from 0 to 1000000000, got "-1"',
          'PARLEY_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS must be an integer from 1 to 3600, got "0"',
          'PARLEY_HTTP_HEADERS_TIMEOUT_SECONDS must not be more than PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS',
        ],
      }),
    );
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

  it('reads whether outbound requests may reach private networks, only as true or false', () => {
    expect(loadConfig({ PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }).outbound).toEqual({
      allowPrivateNetworks: true,
    });
    expect(
      loadConfig({ PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' }).outbound.allowPrivateNetworks,
    ).toBe(false);
    expect(() => loadConfig({ PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'yes' })).toThrow(
      'PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS must be true or false, got "yes"',
    );
  });

  it('serves the web demo by default on the embedded database only, and reads PARLEY_DEMO as true or false', () => {
    expect(loadConfig({}).demo).toBe(true);
    expect(loadConfig({ DATABASE_URL: 'postgres://db.example.com/parley' }).demo).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgres://db.example.com/parley', PARLEY_DEMO: 'true' }).demo).toBe(
      true,
    );
    expect(loadConfig({ PARLEY_DEMO: 'false' }).demo).toBe(false);
    expect(() => loadConfig({ PARLEY_DEMO: 'on' })).toThrow('PARLEY_DEMO must be true or false, got "on"');
  });

  it('reads the VAPID key pair (both or neither) and subject', () => {
    const publicKey =
      'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U';
    const privateKey = 'UUxI4O8-FbRouAevSmBQ6o18hgE4nSG3qwvJTfKc-ls';
    expect(
      loadConfig({
        PARLEY_VAPID_PUBLIC_KEY: publicKey,
        PARLEY_VAPID_PRIVATE_KEY: privateKey,
        PARLEY_VAPID_SUBJECT: 'https://chat.example.com/contact',
      }).vapid,
    ).toEqual({ keys: { publicKey, privateKey }, subject: 'https://chat.example.com/contact' });
    expect(() => loadConfig({ PARLEY_VAPID_PUBLIC_KEY: publicKey })).toThrow(
      'PARLEY_VAPID_PUBLIC_KEY and PARLEY_VAPID_PRIVATE_KEY are set together, or neither',
    );
    expect(() =>
      loadConfig({ PARLEY_VAPID_PUBLIC_KEY: 'short', PARLEY_VAPID_PRIVATE_KEY: privateKey }),
    ).toThrow('PARLEY_VAPID_PUBLIC_KEY must be a P-256 public key');
    expect(() => loadConfig({ PARLEY_VAPID_SUBJECT: 'admin@example.com' })).toThrow(
      'PARLEY_VAPID_SUBJECT must be a mailto: address or an https: URL, got "admin@example.com"',
    );
    expect(() => loadConfig({ PARLEY_VAPID_SUBJECT: 'http://example.com' })).toThrow('PARLEY_VAPID_SUBJECT');
  });
});
