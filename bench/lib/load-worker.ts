// A load-generating worker thread: drives one keep-alive HTTP pool and records latencies in an HDR histogram.
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { randomUUID } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { LoadJob, WorkerResult } from './load.ts';

const job = workerData as LoadJob;
const pool = new Pool(job.base, { connections: job.connections, pipelining: 1 });
const histogram = hdr.build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 60_000_000,
  numberOfSignificantValueDigits: 3,
});
let counter = job.workerIndex * 1_000_000_000;
/**
 * This run's own: every run of a job counts from the same number, so without it a run's first sends carried
 * the client_msg_ids of the run before (a warm-up) and were answered as replays, counted as sends.
 */
const run = randomUUID().slice(0, 8);
let errors = 0;
let completed = 0;

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)] as T;

/** The next request of the job. */
function nextRequest(): {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
} {
  const auth = { authorization: `Bearer ${job.apiKey}` };
  if (job.kind === 'send') {
    const conversation = pick(job.conversations);
    counter++;
    return {
      method: 'POST',
      path: `/v1/conversations/${conversation.id}/messages`,
      headers: { ...auth, 'content-type': 'application/json', 'x-parley-user': pick(conversation.members) },
      body: JSON.stringify({ text: `benchmark message ${counter}`, client_msg_id: `b-${run}-${counter}` }),
    };
  }
  return { method: 'GET', path: pick(job.paths), headers: { ...auth, 'x-parley-user': job.userId } };
}

async function once(intendedStart: number): Promise<void> {
  const request = nextRequest();
  try {
    const response = await pool.request(request);
    await response.body.dump();
    if (response.statusCode >= 400) errors++;
  } catch {
    errors++;
  }
  completed++;
  histogram.recordValue(Math.max(1, Math.round((performance.now() - intendedStart) * 1000)));
}

async function closedLoop(): Promise<void> {
  const end = performance.now() + job.durationMs;
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (performance.now() < end) await once(performance.now());
    }),
  );
}

/** Requests at a fixed rate; latency counts from when each should have started (no coordinated omission). */
async function openLoop(rate: number): Promise<void> {
  const start = performance.now();
  const total = Math.floor((rate * job.durationMs) / 1000);
  const inFlight = new Set<Promise<void>>();
  for (let index = 0; index < total; index++) {
    const intended = start + (index * 1000) / rate;
    const wait = intended - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const request = once(intended).finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  await Promise.all(inFlight);
}

const started = performance.now();
await (job.ratePerSecond === undefined ? closedLoop() : openLoop(job.ratePerSecond));
const elapsedMs = performance.now() - started;
await pool.close();
const result: WorkerResult = {
  completed,
  errors,
  elapsedMs,
  histogram: hdr.encodeIntoCompressedBase64(histogram),
};
parentPort?.postMessage(result);
