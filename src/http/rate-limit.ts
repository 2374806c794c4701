import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { Type } from 'typebox';
import type { RateBudgets, RateLimits } from '../config.ts';
import { AppError } from '../errors.ts';
import type { App } from './app-types.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The rate-limit budget a route counts against when not the one of its method (GET: reads, else writes). */
    rateLimitBudget?: 'sends' | 'uploads';
  }
}

type Budget = keyof RateBudgets;

/** Which budget of its caller a request counts against. */
function budgetOf(request: FastifyRequest): Budget {
  const declared = request.routeOptions.config.rateLimitBudget;
  if (declared !== undefined) return declared;
  return request.method === 'GET' || request.method === 'HEAD' ? 'reads' : 'writes';
}

/** A request's counter and its limit, or null when nothing limits it. */
interface Allowance {
  key: string;
  max: number;
  budget: Budget;
}

/**
 * The counter a request counts against: the acting user's when it acts as one (a user token, or an api key
 * with X-Parley-User), else the api key's. The operator and requests without a caller (/healthz, /readyz,
 * /metrics, /docs, failed authentications, which never get this far) are not counted.
 */
function allowanceOf(request: FastifyRequest, limits: RateLimits): Allowance | null {
  const principal = request.principal;
  if (principal === null || principal.kind === 'operator') return null;
  const budget = budgetOf(request);
  if (principal.kind === 'user') {
    const max = limits.user[budget];
    // The user id last: it is the one part that may contain ':'.
    return max === 0 ? null : { key: `${budget}:${principal.tenantId}:u:${principal.userId}`, max, budget };
  }
  const max = limits.key[budget];
  return max === 0 ? null : { key: `${budget}:${principal.tenantId}:k:${principal.keyId}`, max, budget };
}

/** Keeps `allowanceOf` to one computation per request: the plugin asks for the key, the allow list and max. */
const allowances = new WeakMap<FastifyRequest, Allowance | null>();
function cachedAllowanceOf(request: FastifyRequest, limits: RateLimits): Allowance | null {
  let allowance = allowances.get(request);
  if (allowance === undefined) {
    allowance = allowanceOf(request, limits);
    allowances.set(request, allowance);
  }
  return allowance;
}

/**
 * HTTP rate limits (docs/CONFIG.md, "Limits"), with @fastify/rate-limit: a fixed window per caller and
 * budget, counted in Redis when `redis` is given (every process of a deployment shares the counts) and in
 * this process's memory otherwise. The check runs in `preParsing`, after the authentication hook has named
 * the caller and before the body is read, so a caller over its budget costs no body parsing. While Redis is
 * unreachable requests are not limited (`skipOnError`): a limit must not turn an outage of Redis into one of
 * the API. Every counted response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a
 * refused one is 429 `rate_limited` with `Retry-After`. Must be registered before the routes.
 */
export async function registerRateLimits(
  app: App,
  limits: RateLimits,
  redis: Redis | undefined,
): Promise<void> {
  // Every tenant route may answer 429: said once here, for the OpenAPI document, rather than on each route.
  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth;
    const responses = route.schema?.response as Record<number, unknown> | undefined;
    if (auth === undefined || auth === 'none' || auth === 'operator' || responses === undefined) return;
    responses[429] ??= Type.Ref('Problem');
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    enableDraftSpec: true,
    timeWindow: limits.windowMs,
    // The in-memory store is an LRU: callers past this many in one window start a fresh count.
    cache: 100_000,
    ...(redis === undefined ? {} : { redis, nameSpace: 'parley:rate:v1:' }),
    skipOnError: true,
    keyGenerator: (request) => cachedAllowanceOf(request, limits)?.key ?? '',
    allowList: (request) => cachedAllowanceOf(request, limits) === null,
    max: (request) => cachedAllowanceOf(request, limits)?.max ?? 0,
    errorResponseBuilder: (request, context) => {
      const allowance = cachedAllowanceOf(request, limits);
      return new AppError(
        'rate_limited',
        `at most ${context.max} ${allowance?.budget ?? 'requests'} per ${limits.windowMs / 1000} s for this ` +
          `${request.principal?.kind === 'user' ? 'user' : 'api key'}; retry in ${context.after}`,
      );
    },
  });
}
