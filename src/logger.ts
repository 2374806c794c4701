import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** What a request line logs: never a token, even the one a WebSocket client puts in the URL. */
export function serializeRequest(request: LoggedRequest) {
  return {
    method: request.method,
    url: request.url?.replace(/([?&]access_token=)[^&]*/g, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** The process logger: JSON lines on stdout (stderr for the CLI, whose stdout is its output); no credentials. */
export function createLogger(level: Config['logLevel'], stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino(
    {
      level,
      redact: ['req.headers.authorization', 'req.headers["x-parley-user"]', 'req.headers["idempotency-key"]'],
      serializers: { req: serializeRequest },
    },
    pino.destination(stream === 'stdout' ? 1 : 2),
  );
}
