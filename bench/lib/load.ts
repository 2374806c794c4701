import * as hdr from 'hdr-histogram-js';
import { Worker } from 'node:worker_threads';

/** What a worker drives. */
export type LoadJob = {
  base: string;
  apiKey: string;
  workerIndex: number;
  /** Keep-alive connections of this worker (closed loop: one client each). */
  connections: number;
  durationMs: number;
  /** Open loop at this rate; closed loop (as fast as answers come) when absent. */
  ratePerSecond?: number;
} & (
  | { kind: 'send'; conversations: { id: string; members: string[] }[] }
  /** GETs of paths picked at random, as `userId` (X-Parley-User). */
  | { kind: 'get'; paths: string[]; userId: string }
);

export interface WorkerResult {
  completed: number;
  errors: number;
  elapsedMs: number;
  histogram: string;
}

/** The merged outcome of all workers: throughput and latency percentiles in milliseconds. */
export interface LoadResult {
  requestsPerSecond: number;
  completed: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Runs a job on `workers` threads (the generator's cores), splitting connections and rate among them. */
export async function runLoad(job: Omit<LoadJob, 'workerIndex'>, workers: number): Promise<LoadResult> {
  const results = await Promise.all(
    Array.from({ length: workers }, (_, workerIndex) => {
      const share: LoadJob = {
        ...job,
        workerIndex,
        connections: Math.max(1, Math.round(job.connections / workers)),
        ...(job.ratePerSecond === undefined ? {} : { ratePerSecond: job.ratePerSecond / workers }),
      } as LoadJob;
      return new Promise<WorkerResult>((resolve, reject) => {
        const worker = new Worker(new URL('./load-worker.mjs', import.meta.url), { workerData: share });
        worker.once('message', (message: WorkerResult) => resolve(message));
        worker.once('error', reject);
      });
    }),
  );
  const merged = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  for (const result of results) merged.add(hdr.decodeFromCompressedBase64(result.histogram));
  const completed = results.reduce((sum, result) => sum + result.completed, 0);
  const elapsed = Math.max(...results.map((result) => result.elapsedMs));
  const ms = (micros: number) => micros / 1000;
  return {
    requestsPerSecond: (completed * 1000) / elapsed,
    completed,
    errors: results.reduce((sum, result) => sum + result.errors, 0),
    p50Ms: ms(merged.getValueAtPercentile(50)),
    p90Ms: ms(merged.getValueAtPercentile(90)),
    p99Ms: ms(merged.getValueAtPercentile(99)),
    maxMs: ms(merged.maxValue),
  };
}

/**
 * The read scenarios' measurement: a 2 s warm-up, then `measureMs` in a closed loop (throughput, and the
 * latency of a saturated server) and `measureMs` at `ratePerSecond` offered in an open loop (the latency the
 * targets are read at).
 */
export async function runClosedThenOpen(
  job: Omit<LoadJob, 'workerIndex' | 'durationMs' | 'ratePerSecond'>,
  options: { measureMs: number; ratePerSecond: number; threads: number },
): Promise<{ max: LoadResult; offered: LoadResult }> {
  await runLoad({ ...job, durationMs: 2000 }, options.threads);
  const max = await runLoad({ ...job, durationMs: options.measureMs }, options.threads);
  const offered = await runLoad(
    { ...job, durationMs: options.measureMs, ratePerSecond: options.ratePerSecond },
    options.threads,
  );
  return { max, offered };
}
