import { request, type Ledger } from './http.ts';
import { sleep, type Random } from './random.ts';
import { FrameSocket, socketUrl, type WireEvent, type WireFrame } from './socket.ts';

/** One socket a reader held: when it was ready, when it ended and how. */
export interface ReaderSession {
  server: number;
  readyAt: number | null;
  endedAt: number | null;
  closeCode: number | null;
  resumed: boolean;
}

export interface ReaderOptions {
  /** Mean time between voluntary drops (exponential). */
  dropMeanMs: number;
  /** Of the reconnects, the share that first fill the gap with GET /v1/sync, then resume from its cursor. */
  syncFillShare: number;
}

/** How long a reader waits for `ready` on an open socket before it gives up on that server. */
const READY_TIMEOUT_MS = 10_000;

/** Close codes after which resuming from the same cursor is what the protocol says to do (docs/REALTIME.md). */
const RESUMABLE = new Set([1000, 1001, 1005, 1006, 1011, 1012, 1013, 4008, 4429]);

/**
 * A user's device: holds one socket to a random server, drops it at random (cleanly or by cutting the TCP
 * connection) and comes back with the cursor of the last event it received, on any server, sometimes
 * filling the gap over GET /v1/sync first. Records the message.created events it received, per
 * conversation, in order: at the end each must equal that conversation's history.
 */
export class Reader {
  readonly streams = new Map<string, string[]>();
  /** When each message first reached this reader. */
  readonly firstSeen = new Map<string, number>();
  readonly sessions: ReaderSession[] = [];
  /** What the protocol never allows (a cursor refused, a token refused): each is a finding. */
  readonly findings: string[] = [];
  cursor: string | null = null;
  openFailures = 0;
  syncFills = 0;
  private isDropping = true;
  private isStopped = false;
  private socket: FrameSocket | null = null;
  private wakeUp: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    readonly userId: string,
    private readonly token: string,
    private readonly servers: readonly { url: string }[],
    private readonly ledger: Ledger,
    private readonly random: Random,
    private readonly options: ReaderOptions,
  ) {}

  /** Connects for the first time and resolves once `ready`; then keeps going in the background. */
  async start(): Promise<void> {
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    this.loop = this.run(ready);
    await isReady;
  }

  /** No more voluntary drops (the run is settling); reconnects after a close go on. */
  stopDropping(): void {
    this.isDropping = false;
  }

  /** Whether this reader holds a ready socket now. */
  get isConnected(): boolean {
    const last = this.sessions.at(-1);
    return (
      this.socket?.isOpen === true &&
      last?.readyAt !== null &&
      last?.readyAt !== undefined &&
      last.endedAt === null
    );
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    this.wakeUp?.();
    await this.loop;
  }

  private ingest(event: WireEvent): void {
    if (event.cursor !== undefined) this.cursor = event.cursor;
    if (event.type !== 'message.created') return;
    const id = String(event.data.id);
    let stream = this.streams.get(event.conversation_id);
    if (stream === undefined) this.streams.set(event.conversation_id, (stream = []));
    stream.push(id);
    if (!this.firstSeen.has(id)) this.firstSeen.set(id, Date.now());
  }

  /** Reads what was missed over GET /v1/sync, page by page, moving the cursor with each page. */
  private async fillBySync(base: string): Promise<void> {
    this.syncFills++;
    for (let page = 0; page < 100 && this.cursor !== null && !this.isStopped; page++) {
      let answer;
      try {
        const since = encodeURIComponent(this.cursor);
        answer = await request(this.ledger, base, 'GET', `/v1/sync?since=${since}&limit=200`, this.token);
      } catch {
        return;
      }
      if (answer.status !== 200) {
        if (answer.status === 410 || answer.status === 400) {
          this.findings.push(`GET /v1/sync answered ${answer.status} ${JSON.stringify(answer.body)}`);
        }
        return;
      }
      const body = answer.body as { events: WireEvent[]; next_cursor: string; has_more: boolean };
      for (const event of body.events) this.ingest(event);
      this.cursor = body.next_cursor;
      if (!body.has_more) return;
    }
  }

  private async run(ready: () => void): Promise<void> {
    let isFirst = true;
    while (!this.isStopped) {
      const server = this.random.between(0, this.servers.length - 1);
      const base = this.servers[server]?.url ?? '';
      if (this.cursor !== null && this.random.chance(this.options.syncFillShare)) await this.fillBySync(base);
      let socket: FrameSocket;
      try {
        socket = await FrameSocket.open(socketUrl(base, this.token, this.cursor));
      } catch {
        this.openFailures++;
        await sleep(this.random.between(50, 300));
        continue;
      }
      const session: ReaderSession = {
        server,
        readyAt: null,
        endedAt: null,
        closeCode: null,
        resumed: this.cursor !== null,
      };
      this.sessions.push(session);
      this.socket = socket;
      await new Promise<void>((resolve) => {
        let dropTimer: NodeJS.Timeout | undefined;
        const finish = () => {
          clearTimeout(dropTimer);
          clearTimeout(readyTimer);
          this.wakeUp = null;
          resolve();
        };
        this.wakeUp = () => {
          socket.detach();
          socket.end();
          session.endedAt = Date.now();
          finish();
        };
        // A socket that is open but never ready is a server that hangs: a client gives up and goes elsewhere.
        const readyTimer = setTimeout(() => {
          this.findings.push(
            `no ready within ${READY_TIMEOUT_MS} ms from server ${server}${session.resumed ? ' (resuming)' : ''}`,
          );
          socket.detach();
          socket.end(true);
          session.endedAt = Date.now();
          finish();
        }, READY_TIMEOUT_MS);
        const scheduleDrop = () => {
          if (!this.isDropping) return;
          const wait = -Math.log(1 - this.random.next()) * this.options.dropMeanMs;
          dropTimer = setTimeout(() => {
            if (!this.isDropping) return;
            // Cut at a point between two frames: the cursor is that of the last event taken.
            socket.detach();
            socket.end(this.random.chance(0.5));
            session.endedAt = Date.now();
            finish();
          }, wait);
        };
        socket.listen(
          (frame: WireFrame) => {
            if (frame.type === 'ready') {
              clearTimeout(readyTimer);
              session.readyAt = Date.now();
              if (frame.cursor !== undefined) this.cursor = frame.cursor;
              if (isFirst) {
                isFirst = false;
                ready();
              }
              scheduleDrop();
            } else if (frame.type === 'event' && frame.event) {
              this.ingest(frame.event);
            } else if (
              frame.type === 'error' &&
              (frame.code === 'internal' || frame.code === 'unavailable')
            ) {
              const now = Date.now();
              const status = frame.code === 'internal' ? 500 : 503;
              this.ledger.serverErrors.push({
                from: now,
                to: now,
                status,
                code: frame.code,
                where: 'socket start',
              });
            }
          },
          (code) => {
            socket.detach();
            session.endedAt = Date.now();
            session.closeCode = code;
            if (!RESUMABLE.has(code)) {
              this.findings.push(`socket on server ${server} closed with ${code}`);
              this.isStopped = true;
            }
            finish();
          },
        );
      });
      this.socket = null;
      await sleep(this.random.between(0, 250));
    }
    ready();
  }
}
