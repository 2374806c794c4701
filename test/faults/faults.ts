import { request, type Ledger } from './http.ts';
import { sleep, type Random } from './random.ts';
import type { ServerSlot } from './servers.ts';
import type { PostgresCluster, RedisServer } from './services.ts';
import { FrameSocket, socketUrl } from './socket.ts';

export type FaultKind = 'kill-server' | 'restart-redis' | 'restart-postgres';

/** One fault the run injected. Its window, for counting 5xx as expected, is from `startedAt` to `recoveredAt`. */
export interface FaultRecord {
  kind: FaultKind;
  label: string;
  startedAt: number;
  /** When the faulted service was running again (the process restarted, Redis or PostgreSQL accepting). */
  serviceBackAt: number | null;
  /** When a send through every server was acknowledged and reached a socket on every server; null: never. */
  recoveredAt: number | null;
}

/** The probe tenant: a sender and one socket per server, kept apart from the measured tenants. */
export interface ProbeTenant {
  conversationId: string;
  senderToken: string;
  readerToken: string;
}

/** What a fault needs to act on and to tell when the system has recovered. */
export interface FaultTargets {
  servers: ServerSlot[];
  redis: RedisServer;
  postgres: PostgresCluster;
  probe: ProbeTenant;
  ledger: Ledger;
  /** Probe traffic's own ledger: its errors are how recovery is found, not figures of the run. */
  probeLedger: Ledger;
}

/** A socket of the probe reader on one server, reconnected (fresh) whenever it is gone. */
class ProbeSocket {
  private socket: FrameSocket | null = null;
  private isReady = false;
  readonly seen = new Set<string>();

  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  /** Whether the socket is ready now; starts connecting if it is not. */
  async ensure(): Promise<boolean> {
    if (this.socket?.isOpen && this.isReady) return true;
    this.socket?.detach();
    this.socket?.end(true);
    this.socket = null;
    this.isReady = false;
    try {
      const socket = await FrameSocket.open(socketUrl(this.base, this.token, null), 3_000);
      this.socket = socket;
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 3_000);
        socket.listen(
          (frame) => {
            if (frame.type === 'ready') {
              this.isReady = true;
              clearTimeout(timer);
              resolve(true);
            } else if (frame.event?.type === 'message.created') {
              this.seen.add(String(frame.event.data.id));
            }
          },
          () => {
            this.isReady = false;
            clearTimeout(timer);
            resolve(false);
          },
        );
      });
    } catch {
      return false;
    }
  }

  close(): void {
    this.socket?.detach();
    this.socket?.end();
  }
}

/** Probes whether the system works end to end: a send through every server reaches a socket on every one. */
export class RecoveryProbe {
  private readonly sockets: ProbeSocket[];
  private round = 0;

  constructor(private readonly targets: FaultTargets) {
    this.sockets = targets.servers.map((slot) => new ProbeSocket(slot.url, targets.probe.readerToken));
  }

  /** One round: every probe socket ready, one send through each server, each seen on every socket. */
  async roundSucceeds(): Promise<boolean> {
    const ready = await Promise.all(this.sockets.map((socket) => socket.ensure()));
    if (!ready.every(Boolean)) return false;
    this.round++;
    const { probe, servers, probeLedger } = this.targets;
    const sent = await Promise.all(
      servers.map(async (slot) => {
        try {
          const answer = await request(
            probeLedger,
            slot.url,
            'POST',
            `/v1/conversations/${probe.conversationId}/messages`,
            probe.senderToken,
            { text: `probe ${this.round}`, client_msg_id: `probe-${this.round}-${slot.index}` },
            { timeoutMs: 3_000 },
          );
          return answer.status < 300 ? String(answer.body.id) : null;
        } catch {
          return null;
        }
      }),
    );
    if (sent.some((id) => id === null)) return false;
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      if (this.sockets.every((socket) => sent.every((id) => id !== null && socket.seen.has(id)))) return true;
      await sleep(20);
    }
    return false;
  }

  /** Resolves with the time of the first successful round, or null at `deadline`. */
  async waitForRecovery(deadline: number): Promise<number | null> {
    while (Date.now() < deadline) {
      if (await this.roundSucceeds()) return Date.now();
      await sleep(100);
    }
    return null;
  }

  close(): void {
    for (const socket of this.sockets) socket.close();
  }
}

/** How long a fault may take to recover before the run records that it did not. */
const RECOVERY_TIMEOUT_MS = 60_000;

/** Injects one fault, brings the service back, and waits for the system to work end to end again. */
export async function injectFault(
  kind: FaultKind,
  targets: FaultTargets,
  probe: RecoveryProbe,
  random: Random,
): Promise<FaultRecord> {
  const downMs = random.between(200, 1_500);
  const startedAt = Date.now();
  let label: string;
  if (kind === 'kill-server') {
    const slot = random.pick(targets.servers);
    label = `kill -9 server ${slot.index} (port ${slot.port}), restarted after ${downMs} ms`;
    await slot.kill();
    await sleep(downMs);
    await slot.start(startedAt + RECOVERY_TIMEOUT_MS);
  } else if (kind === 'restart-redis') {
    label = `kill -9 Redis, started again after ${downMs} ms`;
    await targets.redis.kill();
    await sleep(downMs);
    await targets.redis.start();
  } else {
    const mode = random.pick(['fast', 'immediate'] as const);
    label = `stop PostgreSQL (-m ${mode}), started again after ${downMs} ms`;
    await targets.postgres.stop(mode);
    await sleep(downMs);
    await targets.postgres.start();
  }
  const serviceBackAt = Date.now();
  const recoveredAt = await probe.waitForRecovery(startedAt + RECOVERY_TIMEOUT_MS);
  return { kind, label, startedAt, serviceBackAt, recoveredAt };
}

/** The order of a run's faults: `rounds` of one of each kind, each round in a random order. */
export function faultPlan(rounds: number, random: Random): FaultKind[] {
  const kinds: FaultKind[] = ['kill-server', 'restart-redis', 'restart-postgres'];
  return Array.from({ length: rounds }, () => random.shuffle(kinds)).flat();
}
