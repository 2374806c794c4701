import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

/** The process logger: JSON lines on stdout (stderr for the CLI, whose stdout is its output); no credentials. */
export function createLogger(level: Config['logLevel'], stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino(
    {
      level,
      redact: ['req.headers.authorization', 'req.headers["x-parley-user"]', 'req.headers["idempotency-key"]'],
    },
    pino.destination(stream === 'stdout' ? 1 : 2),
  );
}
