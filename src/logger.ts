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

/** How long a log write may wait for a stalled stdout/stderr before the line is dropped. */
const STALL_BUDGET_MS = 2000;
/** Most log output held in memory while stdout/stderr is slow; lines past it are dropped. */
const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;

/**
 * Where log lines go: fd 1 or 2, written asynchronously, so that a slow or stalled reader never blocks
 * the event loop, and never keeps the process from exiting. pino flushes it synchronously on exit; if the
 * reader has taken nothing for STALL_BUDGET_MS, that flush gives up instead of retrying forever (a
 * SIGTERM would otherwise never end the process), and while it stays stalled new lines are dropped. A
 * reader that is gone (EPIPE) ends logging for good; nothing about a log stream may end the process.
 */
export function createLogDestination(fd: 1 | 2) {
  let stalledSince: number | undefined;
  const destination = pino.destination({
    dest: fd,
    sync: false,
    maxLength: MAX_BUFFERED_LOG_BYTES,
    retryEAGAIN: () => {
      const now = Date.now();
      stalledSince ??= now;
      return now - stalledSince < STALL_BUDGET_MS;
    },
  });
  destination.on('write', () => {
    stalledSince = undefined;
  });
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') {
      destination.write = () => true;
      destination.flushSync = () => {};
    }
    // EAGAIN past the stall budget: that line is dropped, and the next one tries again.
  });
  const flushSync = destination.flushSync.bind(destination);
  destination.flushSync = () => {
    try {
      flushSync();
    } catch {
      // The reader has been stalled for STALL_BUDGET_MS, or is gone: what is left is dropped.
    }
  };
  return destination;
}

/** The process logger: JSON lines on stdout (stderr for the CLI, whose stdout is its output); no credentials. */
export function createLogger(level: Config['logLevel'], stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino(
    {
      level,
      redact: ['req.headers.authorization', 'req.headers["x-parley-user"]', 'req.headers["idempotency-key"]'],
      serializers: { req: serializeRequest },
    },
    createLogDestination(stream === 'stdout' ? 1 : 2),
  );
}
