import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

/** The process logger: JSON lines on stdout; credentials never logged. */
export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    redact: ['req.headers.authorization', 'req.headers["x-parley-user"]', 'req.headers["idempotency-key"]'],
  });
}
