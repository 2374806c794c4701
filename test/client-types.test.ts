import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildAsyncApiDocument } from '../src/modules/events/events.asyncapi.ts';
import { CLIENT_TYPES_FILES, renderClientTypes } from '../scripts/client-types.ts';
import { buildOpenApiDocument } from '../scripts/openapi-document.ts';

// The client SDK's types are generated from the server's OpenAPI and AsyncAPI documents and committed
// (packages/client/src/generated/). This fails when a route, schema, frame or event changed without
// `npm run client:types`, so the SDK can never describe a server that no longer exists.

describe('the client SDK types', () => {
  it('are what the documents generate today', async () => {
    const rendered = await renderClientTypes(await buildOpenApiDocument(), buildAsyncApiDocument());
    for (const key of ['openapi', 'asyncapi'] as const) {
      const committed = readFileSync(CLIENT_TYPES_FILES[key], 'utf8');
      expect(
        committed === rendered[key],
        `${CLIENT_TYPES_FILES[key]} is stale: run npm run client:types`,
      ).toBe(true);
    }
  });
});
