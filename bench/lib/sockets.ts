import * as hdr from 'hdr-histogram-js';
import { Worker } from 'node:worker_threads';
import type { SocketCommand, SocketReport, SocketWorkerSetup } from './socket-worker.ts';

/** Delivery figures merged over every socket worker. */
export interface DeliveryResult {
  connected: number;
  failed: number;
  sent: number;
  acked: number;
  sendErrors: number;
  deliveries: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Sockets held by worker threads of the generator process (the server runs in its own process). */
export class SocketFleet {
  private constructor(private readonly workers: Worker[]) {}

  /** Starts `threads` workers and splits `users` among them, one socket each. */
  static start(setup: Omit<SocketWorkerSetup, 'users'> & { users: string[] }, threads: number): SocketFleet {
    const workers = Array.from({ length: threads }, (_, index) => {
      const share: SocketWorkerSetup = {
        ...setup,
        users: setup.users.filter((_, userIndex) => userIndex % threads === index),
      };
      return new Worker(new URL('./socket-worker.mjs', import.meta.url), { workerData: share });
    });
    return new SocketFleet(workers);
  }

  private async ask(command: (workerIndex: number) => SocketCommand): Promise<DeliveryResult> {
    const reports = await Promise.all(
      this.workers.map(
        (worker, index) =>
          new Promise<SocketReport>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage(command(index));
          }),
      ),
    );
    const merged = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 120_000_000,
      numberOfSignificantValueDigits: 3,
    });
    for (const report of reports) merged.add(hdr.decodeFromCompressedBase64(report.histogram));
    const sum = (pick: (report: SocketReport) => number) => reports.reduce((total, r) => total + pick(r), 0);
    const ms = (micros: number) => micros / 1000;
    return {
      connected: sum((r) => r.connected),
      failed: sum((r) => r.failed),
      sent: sum((r) => r.sent),
      acked: sum((r) => r.acked),
      sendErrors: sum((r) => r.sendErrors),
      deliveries: sum((r) => r.deliveries),
      p50Ms: ms(merged.getValueAtPercentile(50)),
      p90Ms: ms(merged.getValueAtPercentile(90)),
      p99Ms: ms(merged.getValueAtPercentile(99)),
      maxMs: ms(merged.maxValue),
    };
  }

  /** Opens every socket and waits for each `ready` (or failure). */
  connect(): Promise<DeliveryResult> {
    return this.ask(() => ({ kind: 'connect' }));
  }

  /** Records deliveries for `durationMs` (+ drain), each worker sending its share of `send` if given. */
  measure(
    durationMs: number,
    drainMs: number,
    send?: { ratePerSecond: number; conversationOfUser: Record<string, string> },
  ): Promise<DeliveryResult> {
    const threads = this.workers.length;
    return this.ask(() => ({
      kind: 'measure',
      durationMs,
      drainMs,
      ...(send === undefined ? {} : { send: { ...send, ratePerSecond: send.ratePerSecond / threads } }),
    }));
  }

  async close(): Promise<void> {
    await this.ask(() => ({ kind: 'close' }));
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
