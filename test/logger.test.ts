import { describe, expect, it } from 'vitest';
import { serializeRequest } from '../src/logger.ts';

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
