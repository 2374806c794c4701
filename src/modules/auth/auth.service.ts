import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Orm } from '../../db/client.ts';
import type { Principal, TenantContext } from '../../context.ts';
import { AppError } from '../../errors.ts';
import { deriveApiKeySecret, isSecretOfHash, keyIdOfSecret } from '../tenants/api-key-secrets.ts';
import { findApiKey, type ApiKeyRow } from '../tenants/tenants.repository.ts';
import { isUserId } from '../users/user-id.ts';
import type { CredentialCache } from './credential-cache.ts';
import type { UsersService } from '../users/users.service.ts';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Longest lifetime a minted user token may have: 30 days (and, by default, any user token). */
export const MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Lifetime of a minted user token when none is asked for: 1 hour. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** Clock skew tolerated on `exp`/`nbf`. */
const CLOCK_TOLERANCE_SECONDS = 5;

export interface AuthServiceDeps {
  orm: Orm;
  serverKey: string;
  /**
   * SHA-256 (hex) of the operator token, or a function that reads the one in effect (the stored,
   * rotatable one; see src/admin-token.ts).
   */
  adminTokenHash: string | (() => Promise<string>);
  users: UsersService;
  /** Live keys and active users already seen, so most requests authenticate without the database. */
  cache: CredentialCache;
  /** Logs what an operator must act on (a server key that does not match a stored key). */
  warn: (message: string, details: Record<string, unknown>) => void;
  /**
   * Longest lifetime a user token may have, minted or signed by the tenant itself
   * (PARLEY_MAX_TOKEN_TTL_SECONDS); `MAX_TOKEN_TTL_SECONDS` when absent.
   */
  maxTokenTtlSeconds?: number;
}

/** A verified user token: who it names, through which key, and until when (ms since the epoch). */
export interface VerifiedUserToken {
  principal: Extract<Principal, { kind: 'user' }>;
  expiresAtMs: number;
}

const unauthorized = (detail: string) => new AppError('unauthorized', detail);

/** Checks bearer credentials and mints user tokens. The one place that decides who a caller is. */
export function createAuthService(deps: AuthServiceDeps) {
  const { adminTokenHash } = deps;
  const adminHash = async () =>
    Buffer.from(typeof adminTokenHash === 'string' ? adminTokenHash : await adminTokenHash(), 'hex');
  const maxTtlSeconds = deps.maxTokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS;

  const liveKey = async (keyId: string): Promise<ApiKeyRow> => {
    if (!UUID_PATTERN.test(keyId)) throw unauthorized('unknown api key');
    const id = keyId.toLowerCase();
    const cached = deps.cache.liveApiKey(id);
    if (cached) return cached;
    const generation = deps.cache.currentGeneration;
    const key = await findApiKey(deps.orm, id);
    if (!key) throw unauthorized('unknown api key');
    if (key.revokedAt !== null) throw unauthorized('api key has been revoked');
    deps.cache.rememberLiveApiKey(key, generation);
    return key;
  };

  /** The secret of a live key, re-derived; refuses if it no longer matches the stored hash. */
  const signingSecretOf = (key: ApiKeyRow): string => {
    const secret = deriveApiKeySecret(deps.serverKey, key.id);
    if (!isSecretOfHash(secret, key.secretHash)) {
      deps.warn('the server key does not match the one api key was created with; check PARLEY_SECRET_KEY', {
        keyId: key.id,
      });
      throw unauthorized('api key cannot verify tokens on this server');
    }
    return secret;
  };

  const authenticateApiKey = async (secret: string, actAs: string | undefined): Promise<Principal> => {
    const keyId = keyIdOfSecret(secret);
    if (keyId === null) throw unauthorized('malformed api key');
    const key = await liveKey(keyId);
    if (!isSecretOfHash(secret, key.secretHash)) throw unauthorized('invalid api key');
    if (actAs === undefined) return { kind: 'backend', tenantId: key.tenantId, keyId: key.id };
    if (!isUserId(actAs)) {
      throw new AppError('validation_failed', 'X-Parley-User must be a user id', [
        { path: '/headers/x-parley-user', message: 'must match ^[A-Za-z0-9_.@:-]{1,128}$' },
      ]);
    }
    return { kind: 'user', tenantId: key.tenantId, userId: actAs, keyId: key.id, via: 'api_key' };
  };

  const verifyUserToken = async (token: string): Promise<VerifiedUserToken> => {
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw unauthorized('malformed token');
    }
    if (typeof kid !== 'string') throw unauthorized('token has no kid');
    const key = await liveKey(kid);
    const secret = new TextEncoder().encode(signingSecretOf(key));
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, secret, {
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthorized('token has expired');
      if (error instanceof joseErrors.JWSSignatureVerificationFailed)
        throw unauthorized('token signature is invalid');
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        throw unauthorized(`token claim ${error.claim} is invalid: ${error.reason}`);
      }
      if (error instanceof joseErrors.JOSEAlgNotAllowed)
        throw unauthorized('token must be signed with HS256');
      if (error instanceof joseErrors.JOSEError) throw unauthorized('token is malformed');
      throw error;
    }
    return {
      principal: {
        kind: 'user',
        tenantId: key.tenantId,
        userId: subjectOf(payload),
        keyId: key.id,
        via: 'token',
      },
      expiresAtMs: expiryOf(payload, maxTtlSeconds) * 1000,
    };
  };

  return {
    /** True when `token` is the operator token (constant time). */
    async isOperatorToken(token: string): Promise<boolean> {
      const presented = createHash('sha256').update(token).digest();
      const expected = await adminHash();
      return presented.length === expected.length && timingSafeEqual(presented, expected);
    },

    /**
     * A tenant principal from a bearer credential: an api key secret (optionally acting as the user named
     * by X-Parley-User) or a user token. Checks the credential only: `ensureActiveUser` comes next.
     */
    async authenticateTenantCredential(token: string, actAs: string | undefined): Promise<Principal> {
      if (token.startsWith('psk_')) return authenticateApiKey(token, actAs);
      const { principal } = await verifyUserToken(token);
      if (actAs !== undefined)
        throw new AppError('forbidden', 'X-Parley-User may be sent only with an api key');
      return principal;
    },

    /** A user token's principal and expiry: what a socket stands on (an api key is refused). */
    verifyUserToken,

    /**
     * Throws 401 unless the key a principal authenticated with is still live and its user not erased:
     * from the cache when it knows, else the database. A socket checks this once it is registered, so
     * a change made while it authenticated is not missed.
     */
    async assertStillValid(principal: Extract<Principal, { kind: 'user' }>): Promise<void> {
      const key = await liveKey(principal.keyId);
      if (key.tenantId !== principal.tenantId) throw unauthorized('unknown api key');
      await this.ensureActiveUser(principal);
    },

    /** Creates the principal's user on first sight (lazy upsert); 401 when that user was erased. */
    async ensureActiveUser(principal: Extract<Principal, { kind: 'user' }>): Promise<void> {
      const { tenantId, userId } = principal;
      if (deps.cache.isKnownActiveUser(tenantId, userId)) return;
      const generation = deps.cache.currentGeneration;
      const state = await deps.users.ensureUser(tenantId, userId);
      if (state === 'erased') throw unauthorized('user has been erased');
      deps.cache.rememberActiveUser(tenantId, userId, generation);
    },

    /** Signs a user token with the caller's own api key, as a tenant backend would. */
    async mintUserToken(
      ctx: TenantContext,
      userId: string,
      ttlSeconds: number,
    ): Promise<{ token: string; expires_at: string }> {
      if (ttlSeconds > maxTtlSeconds) {
        throw new AppError('validation_failed', `tokens live at most ${maxTtlSeconds} seconds here`, [
          {
            path: '/body/ttl_seconds',
            message: `must be <= ${maxTtlSeconds} (PARLEY_MAX_TOKEN_TTL_SECONDS)`,
          },
        ]);
      }
      const key = await liveKey(ctx.actor.keyId);
      const expiresAt = new Date((Math.floor(Date.now() / 1000) + ttlSeconds) * 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: key.id })
        .setSubject(userId)
        .setIssuedAt()
        .setExpirationTime(expiresAt)
        .sign(new TextEncoder().encode(signingSecretOf(key)));
      return { token, expires_at: expiresAt.toISOString() };
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;

/** The user a verified token names: `sub` must be a user id string (any other JSON type is refused). */
function subjectOf(payload: JWTPayload): string {
  const sub: unknown = payload.sub;
  if (typeof sub !== 'string')
    throw unauthorized(`token claim sub must be a user id string, not ${typeOf(sub)}`);
  if (!isUserId(sub)) throw unauthorized('token sub is not a valid user id');
  return sub;
}

/**
 * A verified token's `exp` (seconds), refused when the token would live longer than `maxTtlSeconds`:
 * counted from now (a token a tenant signs must not outlive the limit from the moment it is used) and,
 * when it says when it was issued, from its `iat` (its whole lifetime is bounded, however it is used).
 */
function expiryOf(payload: JWTPayload, maxTtlSeconds: number): number {
  const exp: unknown = payload.exp;
  // jose checked that exp (and iat, nbf when present) is a number; this keeps the type honest.
  if (typeof exp !== 'number' || !Number.isFinite(exp))
    throw unauthorized('token claim exp must be a number');
  const now = Date.now() / 1000;
  if (exp - now > maxTtlSeconds + CLOCK_TOLERANCE_SECONDS) {
    throw unauthorized(`token lives longer than the ${maxTtlSeconds}-second maximum (exp is too far ahead)`);
  }
  const iat: unknown = payload.iat;
  if (typeof iat === 'number' && exp - iat > maxTtlSeconds + CLOCK_TOLERANCE_SECONDS) {
    throw unauthorized(`token lives longer than the ${maxTtlSeconds}-second maximum (exp - iat)`);
  }
  return exp;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
