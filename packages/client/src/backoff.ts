/** How long to wait between attempts: exponential, capped, with jitter. */
export interface BackoffOptions {
  /** The ceiling of the first wait, in ms (default 500). */
  initialMs?: number;
  /** The ceiling of any wait, in ms (default 30,000). */
  maxMs?: number;
}

/**
 * The wait before attempt `attempt + 1` (0 after the first failure): a random time between half the ceiling
 * and the ceiling, which doubles each attempt up to `maxMs` ("equal jitter"). The random half keeps clients
 * that lost the server at the same moment from all coming back at the same moment; the fixed half keeps
 * any one of them from hammering it.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const initial = options.initialMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error('aborted');

/** Resolves after `ms`; rejects at once when `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      if (signal) reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
