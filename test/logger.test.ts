import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { createLogger, serializeRequest } from '../src/logger.ts';
import { createLocalBus } from '../src/realtime/bus.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_ATTACHMENT_LIMITS } from '../src/config.ts';
import { LocalDiskStorage } from '../src/storage/local-disk-storage.ts';
import { createTestDatabase } from './helpers/database.ts';

const OPERATOR = `padm_${randomBytes(32).toString('base64url')}`;
/** A configured secret of no recognisable shape, with characters that JSON and URLs escape. */
const CONFIGURED = 'my own "operator" token/of any shape';

describe('request logging', () => {
  it('never logs the access token a WebSocket client puts in the URL', () => {
    const logged = serializeRequest({
      method: 'GET',
      url: '/v1/ws?cursor=abc&access_token=eyJ.secret.sig',
      ip: '127.0.0.1',
    });
    expect(logged.url).toBe('/v1/ws?cursor=abc&access_token=[redacted]');
    expect(serializeRequest({ method: 'GET', url: '/v1/ws?access_token=x' }).url).toBe(
      '/v1/ws?access_token=[redacted]',
    );
    expect(serializeRequest({ method: 'GET', url: '/v1/me' }).url).toBe('/v1/me');
  });
});

describe('credentials in log lines', () => {
  it('are redacted wherever a request put them: path, query, headers echoed in errors, any shape', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) }, [CONFIGURED]);
    const database = await createTestDatabase();
    const app = await buildApp({
      db: database.db,
      serverKey: randomBytes(32).toString('base64url'),
      adminTokenHash: createHash('sha256').update(OPERATOR).digest('hex'),
      logger,
      bus: createLocalBus(),
      eventRetentionDays: 30,
      // Never written to: nothing here uploads.
      attachments: {
        storage: new LocalDiskStorage(path.join(tmpdir(), 'parley-unused-storage')),
        limits: DEFAULT_ATTACHMENT_LIMITS,
      },
    });
    // A handler whose error echoes its input, as a careless one (or a library) would.
    app.get('/echo-failure', { config: { auth: 'none' } }, (request) => {
      throw new Error(`cannot use ${String(request.headers['x-odd'])} from ${request.url}`);
    });
    await app.ready();
    try {
      const created = await app.inject({
        method: 'POST',
        url: '/v1/admin/tenants',
        headers: { authorization: `Bearer ${OPERATOR}` },
        payload: { name: 'logged' },
      });
      const apiKey = created.json<{ api_key: { secret: string } }>().api_key.secret;
      const minted = await app.inject({
        method: 'POST',
        url: '/v1/users/alice/tokens',
        headers: { authorization: `Bearer ${apiKey}` },
      });
      const jwt = minted.json<{ token: string }>().token;
      const secrets = [apiKey, jwt, OPERATOR, CONFIGURED];

      await app.inject({
        method: 'GET',
        url: `/v1/users/${apiKey}`,
        headers: { authorization: `Bearer ${apiKey}` },
      });
      await app.inject({ method: 'GET', url: `/v1/me?token=${jwt}&other=${OPERATOR}` });
      await app.inject({ method: 'GET', url: `/v1/nowhere/${jwt}/${encodeURIComponent(CONFIGURED)}` });
      await app.inject({ method: 'GET', url: `/v1/ws?access_token=not-shaped-like-anything` });
      await app.inject({
        method: 'GET',
        url: `/echo-failure?key=${apiKey}`,
        headers: { 'x-odd': `Bearer ${jwt}` },
      });
      await app.inject({ method: 'GET', url: `/echo-failure`, headers: { 'x-odd': CONFIGURED } });

      const output = lines.join('');
      expect(output).toContain('unhandled error');
      expect(output).toContain('psk_[redacted]');
      expect(output).toContain('eyJ[redacted]');
      expect(output).toContain('padm_[redacted]');
      for (const secret of secrets) {
        expect(output).not.toContain(secret);
        // Not even the part after the prefix (the api key's HMAC, the JWT's signature).
        expect(output).not.toContain(secret.slice(-20));
      }
      expect(output).not.toContain(encodeURIComponent(CONFIGURED));
      expect(output).not.toContain('not-shaped-like-anything');
    } finally {
      await app.close();
      await database.drop();
    }
  });
});
