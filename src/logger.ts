import { pino, type DestinationStream, type Logger } from 'pino';
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

/**
 * Anything shaped like a Parley credential, wherever it sits in a log line (a URL's path or query, a
 * header, an error's message or stack): an api key secret (`psk_…`), an operator token (`padm_…`) or a
 * JWT (three base64url parts, the first starting `eyJ`, which is `{"` encoded). The prefix stays, so a
 * reader can still tell what kind of credential was there.
 */
const CREDENTIAL_SHAPES = /(psk_|padm_)[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.?[A-Za-z0-9_-]*/g;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Redacts credentials from one serialized log line: every credential-shaped string, and each of
 * `secrets` (configured values of any shape, such as PARLEY_ADMIN_TOKEN) as written, JSON-escaped or
 * percent-encoded. Applied to every line the process logs, so no field or message can carry one out.
 */
export function redactCredentials(line: string, secrets: readonly string[] = []): string {
  let redacted = line.replace(CREDENTIAL_SHAPES, (match, prefix: string | undefined) =>
    prefix === undefined ? 'eyJ[redacted]' : `${prefix}[redacted]`,
  );
  for (const secret of secrets) {
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
      redacted = redacted.replace(new RegExp(escapeRegExp(form), 'g'), '[redacted]');
    }
  }
  return redacted;
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

/**
 * The process logger: JSON lines on stdout (stderr for the CLI, whose stdout is its output), or `output`
 * (tests); no credentials in any line (redactCredentials, with the configured `secrets` too).
 */
export function createLogger(
  level: Config['logLevel'],
  output: 'stdout' | 'stderr' | DestinationStream = 'stdout',
  secrets: readonly string[] = [],
): Logger {
  const configured = secrets.filter((secret) => secret.length > 0);
  return pino(
    {
      level,
      redact: ['req.headers.authorization', 'req.headers["x-parley-user"]', 'req.headers["idempotency-key"]'],
      serializers: { req: serializeRequest },
      hooks: { streamWrite: (line) => redactCredentials(line, configured) },
    },
    output === 'stdout' ? createLogDestination(1) : output === 'stderr' ? createLogDestination(2) : output,
  );
}

/** The configured secrets a logger must never print, whatever their shape. */
export const configuredSecrets = (
  config: Pick<Config, 'adminToken' | 'secretKey'> & { vapid?: Config['vapid'] },
): string[] =>
  [config.adminToken, config.secretKey, config.vapid?.keys?.privateKey].filter(
    (secret): secret is string => secret !== undefined,
  );
