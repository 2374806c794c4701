import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/**
 * A route schema's mark for a JSON body the client may leave out: @fastify/swagger copies `x-` keys onto the
 * operation, and the OpenAPI document's finishing pass (openapi-document.ts) turns it into
 * `requestBody.required: false`. A route that carries it must also run `defaultToEmptyBody`.
 */
export const OPTIONAL_BODY = 'x-parley-optional-body';

/** preValidation hook: a request without a body is validated and handled as `{}`. */
export function defaultToEmptyBody(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  (request as { body: unknown }).body ??= {};
  done();
}
