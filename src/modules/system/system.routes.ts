import type { Registry } from 'prom-client';
import { Type } from 'typebox';
import type { Database } from '../../db/client.ts';
import type { Bus } from '../../realtime/bus.ts';
import type { App } from '../../http/app-types.ts';

const tags = ['system'];
const open = { auth: 'none' } as const;

const ReadyStatus = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({
    database: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
    bus: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  }),
});

/** Health, readiness, metrics and the OpenAPI document: unauthenticated, for orchestrators and tooling. */
export function registerSystemRoutes(app: App, deps: { db: Database; bus: Bus; metrics: Registry }): void {
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
      summary: 'The process can serve: its database and bus answer',
      response: { 200: ReadyStatus, 503: ReadyStatus },
    },
    handler: async (request, reply) => {
      const check = (probe: () => Promise<void>, name: string) =>
        probe().then(
          () => 'ok' as const,
          (error: unknown) => {
            request.log.warn({ err: error }, `readiness: ${name} unreachable`);
            return 'error' as const;
          },
        );
      const [database, bus] = await Promise.all([
        check(() => deps.db.ping(), 'database'),
        check(() => deps.bus.ping(), 'bus'),
      ]);
      const isReady = database === 'ok' && bus === 'ok';
      return reply
        .code(isReady ? 200 : 503)
        .send({ status: isReady ? 'ready' : 'unavailable', checks: { database, bus } });
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
