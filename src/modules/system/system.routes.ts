import type { Registry } from 'prom-client';
import { Type } from 'typebox';
import type { Database } from '../../db/client.ts';
import type { App } from '../../http/app-types.ts';

const tags = ['system'];
const open = { auth: 'none' } as const;

const ReadyStatus = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({ database: Type.Union([Type.Literal('ok'), Type.Literal('error')]) }),
});

/** Health, readiness, metrics and the OpenAPI document: unauthenticated, for orchestrators and tooling. */
export function registerSystemRoutes(app: App, deps: { db: Database; metrics: Registry }): void {
  app.get('/healthz', {
    config: open,
    schema: {
      tags,
      summary: 'The process is up',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) },
    },
    handler: () => ({ status: 'ok' as const }),
  });

  app.get('/readyz', {
    config: open,
    schema: {
      tags,
      summary: 'The process can serve: its database answers',
      response: { 200: ReadyStatus, 503: ReadyStatus },
    },
    handler: async (request, reply) => {
      try {
        await deps.db.ping();
        return { status: 'ready' as const, checks: { database: 'ok' as const } };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return reply.code(503).send({ status: 'unavailable', checks: { database: 'error' } });
      }
    },
  });

  app.get('/metrics', {
    config: open,
    schema: { tags, summary: 'Prometheus metrics', produces: ['text/plain'] },
    handler: async (_request, reply) =>
      reply.type(deps.metrics.contentType).send(await deps.metrics.metrics()),
  });

  app.get('/openapi.json', {
    config: open,
    schema: { hide: true },
    handler: () => app.swagger(),
  });
}
