import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { LoggedEvent, ServerFrame, StoredEvent } from '../modules/events/events.schemas.ts';
import { isVisibleIn, type Snapshot } from '../modules/events/events.cursor.ts';
import { corkUntilNextTick } from './frames.ts';

/** An event's `{"type":"event"}` message, serialized (and framed) at most once for all its sockets. */
export interface EncodedEvent {
  payload: () => Buffer;
  frame: () => Buffer;
}

/** Close codes of the gateway (docs/REALTIME.md). */
export const CLOSE = {
  unauthorized: 4401,
  forbidden: 4403,
  slowConsumer: 4008,
  tooManyConnections: 4429,
  badRequest: 4400,
  cursorExpired: 4410,
  internal: 1011,
  /** RFC 6455's "Try Again Later": the database could not be reached while the session started. */
  tryAgainLater: 1013,
  goingAway: 1001,
} as const;

/** Timings and bounds of real-time delivery; the defaults are the documented ones (docs/REALTIME.md). */
export interface HubTimings {
  /** A socket's buffered output past which it is closed as a slow consumer (the client resyncs). */
  maxBufferedBytes: number;
  /** How often each feed reads the log even without a wake-up: the bus is only the fast path. */
  safetyPollMs: number;
  /** How long `typing.started` lasts without renewal. */
  typingExpiresMs: number;
  /** How long after a user's last socket closes it is announced offline. */
  offlineAfterMs: number;
  /**
   * How often the database is asked whether the api keys and users of this process's sockets are still
   * live, for changes the bus did not bring (Redis down, the CLI): 10 s, the credential cache's TTL.
   */
  credentialCheckMs?: number;
  /** How often a process re-announces the users it has sockets for (presence renewal). */
  presenceRenewMs?: number;
  /**
   * How long a process's presence entry lasts unrenewed: a process that died (kill -9) leaves its users
   * online this long at most, then the others announce them offline.
   */
  presenceTtlMs?: number;
}

export const DEFAULT_HUB_TIMINGS: Required<HubTimings> = {
  maxBufferedBytes: 4 * 1024 * 1024,
  safetyPollMs: 2000,
  typingExpiresMs: 6000,
  offlineAfterMs: 30_000,
  credentialCheckMs: 10_000,
  presenceRenewMs: 10_000,
  presenceTtlMs: 35_000,
};
/** One authenticated socket. */
export class Connection {
  readonly id = randomUUID();
  /** Conversations whose events this socket receives; its feed keeps it current from membership events. */
  conversations = new Set<string>();
  /** Live events held back while the connection catches up from its resume cursor. */
  private held: LoggedEvent[] | null = null;
  /**
   * The snapshot the client had read up to when it resumed. Another process's feed may be ahead of this
   * one's, so live events already visible there were delivered before the reconnect: they are skipped.
   */
  resumedAt: Snapshot | null = null;
  /** The api key the socket's token was signed with: revoking it ends the socket. */
  keyId = '';
  /** When the socket's token expires (ms since the epoch): the socket ends then. */
  expiresAtMs = Number.POSITIVE_INFINITY;
  /** Why the credentials the socket stands on ended, once they have: every frame after is refused. */
  endedBecause: string | null = null;

  constructor(
    readonly tenantId: string,
    readonly userId: string,
    readonly socket: WebSocket,
    private readonly maxBufferedBytes = DEFAULT_HUB_TIMINGS.maxBufferedBytes,
    /** The TCP socket under `socket` (the upgraded request's): fan-out writes to it directly; none in tests. */
    private readonly transport?: Duplex,
  ) {}

  /**
   * The credentials the socket stands on ended (key revoked, tenant deleted, user erased, token expired):
   * close with 4401 and refuse whatever frames still arrive while it closes.
   */
  endCredentials(reason: string): void {
    if (this.endedBecause !== null) return;
    this.endedBecause = reason;
    this.socket.close(CLOSE.unauthorized, reason);
  }

  /** Sends a frame, unless the client reads too slowly: then the socket is closed so it can resync. */
  send(frame: ServerFrame): void {
    if (!this.isWritable()) return;
    if (this.transport !== undefined) corkUntilNextTick(this.transport);
    this.socket.send(JSON.stringify(frame));
  }

  /**
   * Sends a complete text frame built once for every socket (`encodeTextFrame`): written straight to the TCP
   * socket, skipping ws's per-socket framing, when nothing can be queued inside ws (no extension such as
   * permessage-deflate was negotiated, so ws writes every frame at once and the order holds). The socket's
   * frames of one tick leave in one write.
   */
  sendFrame(frame: Buffer, payload: () => Buffer): void {
    if (!this.isWritable()) return;
    const transport = this.transport;
    if (transport === undefined || this.socket.extensions !== '') {
      this.socket.send(payload(), { binary: false });
      return;
    }
    corkUntilNextTick(transport);
    transport.write(frame);
  }

  /** Open and keeping up; a client reading too slowly is closed so it can resync from its cursor. */
  private isWritable(): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.socket.close(CLOSE.slowConsumer, 'slow consumer: reconnect with your last cursor');
      return false;
    }
    return true;
  }

  /**
   * Delivers a live event now, or holds it until the catch-up is done. `encoded` is the event serialized
   * and framed once for every socket it goes to.
   */
  deliver(event: StoredEvent, frame: LoggedEvent, encoded: EncodedEvent): void {
    if (this.resumedAt !== null && isVisibleIn(BigInt(event.tx), this.resumedAt)) return;
    if (this.held === null) this.sendFrame(encoded.frame(), encoded.payload);
    else this.held.push(frame);
  }

  holdLiveEvents(): void {
    this.held = [];
  }

  releaseLiveEvents(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const frame of held) this.send({ type: 'event', event: frame });
  }
}
