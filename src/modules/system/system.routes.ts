import type { Registry } from 'prom-client';
import { Type } from 'typebox';
import type { Database } from '../../db/client.ts';
import type { Bus } from '../events/events.bus.ts';
import type { App } from '../../http/app-types.ts';
import { buildAsyncApiDocument } from '../events/events.asyncapi.ts';

const tags = ['system'];
const open = { auth: 'none' } as const;

const Check = Type.Union([Type.Literal('ok'), Type.Literal('error')]);
/** The body of /readyz, with the examples of the status it answers with (200, or 503). */
const readyStatus = (examples: unknown[]) =>
  Type.Object(
    {
      status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('unavailable')], {
        description:
          'ready: everything answers. degraded: the database answers but the bus (Redis) does not; the ' +
          'process still serves and delivers events (by its periodic read of the event log, within seconds ' +
          'instead of at once). unavailable (503): the database does not answer.',
      }),
      checks: Type.Object({ database: Check, bus: Check }),
    },
    { examples },
  );

const METRICS_EXAMPLE = [
  '# HELP parley_http_requests_total HTTP requests served',
  '# TYPE parley_http_requests_total counter',
  'parley_http_requests_total{method="GET",route="/v1/conversations",status_code="200"} 1027',
  '# HELP parley_http_request_duration_seconds HTTP request latency, from arrival to the last byte handed to the socket',
  '# TYPE parley_http_request_duration_seconds histogram',
  'parley_http_request_duration_seconds_bucket{le="0.01",method="GET",route="/v1/conversations",status_code="200"} 988',
  'parley_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/conversations",status_code="200"} 1027',
  'parley_http_request_duration_seconds_sum{method="GET",route="/v1/conversations",status_code="200"} 4.173',
  'parley_http_request_duration_seconds_count{method="GET",route="/v1/conversations",status_code="200"} 1027',
  '',
].join('\n');

/** How long a readiness probe waits for the database or the bus before counting it as down. */
const CHECK_TIMEOUT_MS = 2000;

/** Health, readiness, metrics and the OpenAPI document: unauthenticated, for orchestrators and tooling. */
export function registerSystemRoutes(app: App, deps: { db: Database; bus: Bus; metrics: Registry }): void {
  app.get('/healthz', {
    config: open,
    schema: {
      operationId: 'getHealth',
      security: [],
      description:
        'Liveness: answers 200 as long as the process runs, without touching the database. For a load balancer deciding whether to restart the process; readiness is `/readyz`.',
      tags,
      summary: 'The process is up',
      response: { 200: Type.Object({ status: Type.Literal('ok') }, { examples: [{ status: 'ok' }] }) },
    },
    handler: () => ({ status: 'ok' as const }),
  });

  app.get('/readyz', {
    config: open,
    schema: {
      operationId: 'getReadiness',
      security: [],
      description:
        'Readiness: 200 when the database answers (`degraded` when the bus, Redis, does not: the process still serves), 503 when the database does not; `checks` says which. For a load balancer deciding whether to send traffic here.',
      tags,
      summary: 'The process can serve: its database answers (and whether its bus does)',
      response: {
        200: readyStatus([
          { status: 'ready', checks: { database: 'ok', bus: 'ok' } },
          { status: 'degraded', checks: { database: 'ok', bus: 'error' } },
        ]),
        503: readyStatus([{ status: 'unavailable', checks: { database: 'error', bus: 'ok' } }]),
      },
    },
    handler: async (request, reply) => {
      const check = (probe: () => Promise<void>, name: string) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
            CHECK_TIMEOUT_MS,
          );
        });
        return Promise.race([probe(), timeout])
          .then(
            () => 'ok' as const,
            (error: unknown) => {
              request.log.warn({ err: error }, `readiness: ${name} unreachable`);
              return 'error' as const;
            },
          )
          .finally(() => clearTimeout(timer));
      };
      const [database, bus] = await Promise.all([
        check(() => deps.db.ping(), 'database'),
        check(() => deps.bus.ping(), 'bus'),
      ]);
      // Without the database nothing can be served; without the bus, events still flow through the log.
      const status = database === 'error' ? 'unavailable' : bus === 'error' ? 'degraded' : 'ready';
      return reply.code(status === 'unavailable' ? 503 : 200).send({ status, checks: { database, bus } });
    },
  });

  app.get('/metrics', {
    config: open,
    schema: {
      operationId: 'getMetrics',
      security: [],
      description:
        'Prometheus text exposition: HTTP requests and their durations by route, sockets, fan-out, background work by state and age, the process. No credential: restrict it at the network edge.',
      tags,
      summary: 'Prometheus metrics',
      produces: ['text/plain'],
      response: {
        200: Type.String({
          description: 'The Prometheus text format (version 0.0.4)',
          examples: [METRICS_EXAMPLE],
        }),
      },
    },
    handler: async (_request, reply) =>
      reply.type(deps.metrics.contentType).send(await deps.metrics.metrics()),
  });

  app.get('/openapi.json', {
    config: open,
    schema: { hide: true },
    handler: () => app.swagger(),
  });

  // The socket's protocol, from the same event contract as /v1/sync's schema in the OpenAPI document.
  const asyncApi = buildAsyncApiDocument();
  app.get('/asyncapi.json', {
    config: open,
    schema: { hide: true },
    handler: () => asyncApi,
  });
}
