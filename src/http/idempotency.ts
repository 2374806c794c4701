import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Orm } from '../db/client.ts';
import { inTenant, OPERATOR_SCOPE_ID } from '../db/tenant-scope.ts';
import type { Principal } from '../context.ts';
import { AppError } from '../errors.ts';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  purgeExpiredIdempotencyKeys,
  releaseIdempotencyKey,
} from '../modules/idempotency/idempotency.repository.ts';
import { createSealedBox } from '../sealed-box.ts';
import type { App } from './app-types.ts';

const MUTATING_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Response headers worth replaying; the rest (date, request id) belong to the retry. */
const REPLAYED_HEADERS = ['content-type', 'location'];
const PURGE_INTERVAL_MS = 10 * 60 * 1000;

interface Claim {
  scopeId: string;
  actor: string;
  key: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The idempotency key this request holds, until its response is stored. */
    idempotencyClaim: Claim | null;
  }
}

const scopeIdOf = (principal: Principal) =>
  principal.kind === 'operator' ? OPERATOR_SCOPE_ID : principal.tenantId;
const actorOf = (principal: Principal) =>
  principal.kind === 'user' ? `user:${principal.userId}` : principal.kind;

function requestHashOf(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
}

/**
 * `Idempotency-Key` on every mutating route: the first request with a key runs and its response is stored
 * (per tenant and caller, 24 h); a repeat with the same body gets that response again, with
 * `Idempotent-Replayed: true`; the same key with another body is 422; a repeat while the first still runs is 409.
 * Stored bodies are sealed under the server key: they can carry secrets (a new api key, a minted token).
 */
export function registerIdempotency(app: App, orm: Orm, serverKey: string): void {
  const box = createSealedBox(serverKey, 'idempotent-response');
  app.decorateRequest('idempotencyClaim', null);

  app.addHook('preHandler', async (request, reply) => {
    const header = request.headers['idempotency-key'];
    if (header === undefined || !MUTATING_METHODS.has(request.method) || request.principal === null) return;
    if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
      throw new AppError('validation_failed', 'Idempotency-Key must be 1–255 visible ASCII characters', [
        { path: '/headers/idempotency-key', message: 'must be 1–255 visible ASCII characters' },
      ]);
    }
    const claim: Claim = {
      scopeId: scopeIdOf(request.principal),
      actor: actorOf(request.principal),
      key: header,
    };
    const requestHash = requestHashOf(request);
    const result = await inTenant(orm, claim.scopeId, (scope) =>
      claimIdempotencyKey(scope, { actor: claim.actor, key: claim.key, requestHash }),
    );
    if (result.claimed) {
      request.idempotencyClaim = claim;
      return;
    }
    const { existing } = result;
    if (existing.requestHash !== requestHash) {
      throw new AppError('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
    }
    if (existing.status === null) {
      throw new AppError('conflict', 'a request with this Idempotency-Key is still in progress; retry later');
    }
    await reply
      .code(existing.status)
      .headers({ ...existing.responseHeaders, 'idempotent-replayed': 'true' })
      .send(existing.responseBody === null ? '' : box.open(existing.responseBody));
    return reply;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claim = request.idempotencyClaim;
    if (!claim) return payload;
    request.idempotencyClaim = null;
    const stored = { actor: claim.actor, key: claim.key };
    try {
      await inTenant(orm, claim.scopeId, async (scope) => {
        if (reply.statusCode >= 500) {
          await releaseIdempotencyKey(scope, stored);
          return;
        }
        const headers: Record<string, string> = {};
        for (const name of REPLAYED_HEADERS) {
          const value = reply.getHeader(name);
          if (typeof value === 'string') headers[name] = value;
        }
        const body =
          typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '';
        await completeIdempotencyKey(scope, stored, {
          status: reply.statusCode,
          headers,
          body: box.seal(body),
        });
      });
    } catch (error) {
      // The response itself succeeded; a retry will see the claim as in progress until it is abandoned.
      request.log.error({ err: error }, 'could not store the idempotent response');
    }
    return payload;
  });

  const purge = setInterval(() => {
    purgeExpiredIdempotencyKeys(orm).catch((error: unknown) =>
      app.log.warn({ err: error }, 'purging expired idempotency keys failed'),
    );
  }, PURGE_INTERVAL_MS);
  purge.unref();
  app.addHook('onClose', () => clearInterval(purge));
}
