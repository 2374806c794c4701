import { Type } from 'typebox';
import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, Timestamp } from '../../http/schemas.ts';
import { UserParams } from '../users/users.schemas.ts';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, type AuthService } from './auth.service.ts';
import { OPTIONAL_BODY } from '../../http/optional-body.ts';

const MintTokenBody = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({
        format: 'int32',
        minimum: 60,
        maximum: MAX_TOKEN_TTL_SECONDS,
        default: DEFAULT_TOKEN_TTL_SECONDS,
        description: 'Lifetime of the token, 60 s to 30 days; 1 hour when left out',
      }),
    ),
  },
  { additionalProperties: false, examples: [{ ttl_seconds: 3600 }] },
);

const MintedToken = Type.Object(
  {
    token: Type.String({
      pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
      maxLength: 4096,
      description: 'HS256 JWT: header kid = the api key id, claims sub and exp',
    }),
    expires_at: Timestamp,
  },
  {
    examples: [
      {
        token:
          'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjAxOWE5YjY2LTBiMWMtN2QyZS04ZjNhLTRiNWM2ZDdlOGY5YSJ9.' +
          'eyJzdWIiOiJhbGljZSIsImlhdCI6MTc5NTM0MTYwMCwiZXhwIjoxNzk1MzQ1MjAwfQ.' +
          'GisPxY6mojW1pgjoiJlYfvIUCCrfH84nNQfILs-c2Go',
        expires_at: '2026-11-22T11:00:00.000Z',
      },
    ],
  },
);

/** Token minting: a convenience for tenant backends that do not sign their own JWTs. */
export function registerAuthRoutes(app: App, auth: AuthService): void {
  app.post('/v1/users/:user_id/tokens', {
    config: { auth: 'backend' },
    schema: {
      // The body is optional: a bare POST is read as `{}`.
      [OPTIONAL_BODY]: true,
      operationId: 'mintUserToken',
      description:
        'Mints a user token (an HS256 JWT signed with the calling api key, `kid` = its id) for a client: for `Authorization: Bearer` and the WebSocket. The body is optional: `ttl_seconds` (default one hour, at most 30 days). A backend may also sign tokens itself. An api key only.',
      tags: ['users'],
      security: [{ apiKey: [] }],
      summary: 'Mint a user token signed with the calling api key',
      params: UserParams,
      body: MintTokenBody,
      response: { 201: MintedToken, ...errorResponses('forbidden') },
    },
    handler: async (request, reply) => {
      const ttl = request.body.ttl_seconds ?? DEFAULT_TOKEN_TTL_SECONDS;
      return reply
        .code(201)
        .send(await auth.mintUserToken(tenantContext(request), request.params.user_id, ttl));
    },
  });
}
