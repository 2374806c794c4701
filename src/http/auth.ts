import type { FastifyRequest } from 'fastify';
import { tenantContextOf, type Principal, type TenantContext } from '../context.ts';
import { AppError } from '../errors.ts';
import type { AuthService } from '../modules/auth/auth.service.ts';
import type { App } from './app-types.ts';

/**
 * Who may call a route: nobody in particular, the operator, the tenant backend (api key without
 * X-Parley-User), a user (user token, or api key with X-Parley-User), or either kind of tenant caller.
 */
export type AuthRequirement = 'none' | 'operator' | 'backend' | 'user' | 'tenant';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every /v1 route; checked before the body is even read. */
    auth?: AuthRequirement;
  }
  interface FastifyRequest {
    /** Set by the auth hook on routes that require a caller. */
    principal: Principal | null;
  }
}

const BEARER = /^Bearer +(\S+)$/i;

/** The credential of an `Authorization: Bearer <credential>` header; undefined for any other value. */
export function bearerCredentialOf(header: string | undefined): string | undefined {
  return BEARER.exec(header ?? '')?.[1];
}

function bearerTokenOf(request: FastifyRequest): string {
  const token = bearerCredentialOf(request.headers.authorization);
  if (token === undefined) throw new AppError('unauthorized', 'send Authorization: Bearer <credential>');
  return token;
}

function actAsOf(request: FastifyRequest): string | undefined {
  const value = request.headers['x-parley-user'];
  if (Array.isArray(value)) {
    throw new AppError('validation_failed', 'X-Parley-User may be sent once', [
      { path: '/headers/x-parley-user', message: 'must be a single value' },
    ]);
  }
  return value;
}

/** Registers the authentication hook and refuses to start if a /v1 route forgot to say who may call it. */
export function registerAuth(app: App, auth: AuthService): void {
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/') && route.config?.auth === undefined) {
      throw new Error(`route ${route.method.toString()} ${route.url} does not declare config.auth`);
    }
  });

  app.addHook('onRequest', async (request) => {
    const requirement = request.routeOptions.config.auth ?? 'none';
    if (requirement === 'none') return;
    const token = bearerTokenOf(request);
    if (requirement === 'operator') {
      if (!(await auth.isOperatorToken(token))) throw new AppError('unauthorized', 'invalid operator token');
      request.principal = { kind: 'operator' };
      return;
    }
    const principal = await auth.authenticateTenantCredential(token, actAsOf(request));
    if (requirement === 'backend' && principal.kind !== 'backend') {
      throw new AppError(
        'forbidden',
        'only the tenant backend (an api key without X-Parley-User) may do this',
      );
    }
    if (requirement === 'user' && principal.kind !== 'user') {
      throw new AppError(
        'forbidden',
        'this acts as a user: send a user token, or an api key with X-Parley-User',
      );
    }
    // Only now, for a request that will go ahead, is the user created on first sight.
    if (principal.kind === 'user') await auth.ensureActiveUser(principal);
    request.principal = principal;
  });
}

/** The tenant context of an authenticated tenant request. */
export function tenantContext(request: FastifyRequest): TenantContext {
  const principal = request.principal;
  if (principal === null || principal.kind === 'operator') {
    throw new Error(`route ${request.routeOptions.url ?? ''} reads a tenant context it does not require`);
  }
  return tenantContextOf(principal);
}

/** The user id of an authenticated user request. */
export function userIdOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (principal?.kind !== 'user') throw new Error('route reads a user it does not require');
  return principal.userId;
}
