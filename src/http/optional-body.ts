import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { App } from './app-types.ts';

/**
 * A route schema's mark for a JSON body the client may leave out. It is all a route says: the hook below then
 * reads a request without a body as `{}`, and the OpenAPI document's finishing pass (openapi-document.ts;
 * @fastify/swagger copies `x-` keys onto the operation) writes `requestBody.required: false`.
 */
export const OPTIONAL_BODY = 'x-parley-optional-body';

/** preValidation: a request without a body is validated and handled as `{}`. */
function defaultToEmptyBody(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  (request as { body: unknown }).body ??= {};
  done();
}

/** Gives every route marked `OPTIONAL_BODY` the hook that supplies `{}`; register before the routes. */
export function registerOptionalBodies(app: App): void {
  app.addHook('onRoute', (route) => {
    if ((route.schema as Record<string, unknown> | undefined)?.[OPTIONAL_BODY] !== true) return;
    const own = route.preValidation;
    route.preValidation = [
      defaultToEmptyBody,
      ...(own === undefined ? [] : Array.isArray(own) ? own : [own]),
    ];
  });
}
