import type { Duplex } from 'node:stream';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { tenantContextOf, type Principal } from '../context.ts';
import { AppError, appErrorOf } from '../errors.ts';
import {
  findUnstorableText,
  isJsonDeeperThan,
  MAX_JSON_DEPTH,
  UNSTORABLE_TEXT_MESSAGE,
} from '../http/input-text.ts';
import type { VerifiedUserToken } from '../modules/auth/auth.service.ts';
import { ClientFrame, type ServerFrame } from '../modules/events/events.schemas.ts';
import type { MessagesService } from '../modules/messages/messages.service.ts';
import type { ReadsService } from '../modules/reads/reads.service.ts';
import { assertCursorRetained, decodeCursor, encodeCursor } from '../modules/events/events.cursor.ts';
import { CLOSE, Connection } from './connection.ts';
import type { ConnectionLease, ConnectionLimits } from './connection-limits.ts';
import type { Hub } from './hub.ts';
import { ENDED } from './socket-credentials.ts';

// One socket of the gateway (gateway.ts takes the upgrade): authentication, the frames a client sends,
// and the answers to them.

/** The close code for a refused connection, by the error that refused it. */
const CLOSE_CODE_OF: Partial<Record<string, number>> = {
  unauthorized: CLOSE.unauthorized,
  forbidden: CLOSE.forbidden,
  cursor_expired: CLOSE.cursorExpired,
  validation_failed: CLOSE.badRequest,
  unavailable: CLOSE.tryAgainLater,
};
const AUTH_TIMEOUT_MS = 5000;
/**
 * Frames a socket may send before `ready` that wait for it (a client that sends as soon as it connects); the
 * next is refused with `rate_limited`. Authentication takes a round trip to the database, rarely more.
 */
export const MAX_FRAMES_BEFORE_READY = 32;

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** Ajv for the gateway's own schemas (frames, the upgrade's query): the first error only, formats checked. */
export const gatewayAjv = new Ajv({ allErrors: false, strict: false });
addFormats(gatewayAjv, ['uuid', 'int32', 'int64']);
const isClientFrame = gatewayAjv.compile<ClientFrame>(ClientFrame);

/** The text of a frame, however ws chunked it. */
export function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(new Uint8Array(data)).toString('utf8');
}

/** What every socket of the gateway shares. */
export interface GatewayShared {
  hub: Hub;
  messages: MessagesService;
  reads: ReadsService;
  /** Frames a socket may send per second, sustained (bursts of twice that). */
  maxFramesPerSecond: number;
  connectionLimits: ConnectionLimits;
  retentionDays: number;
  log: FastifyBaseLogger;
  authenticate(token: string): Promise<VerifiedUserToken>;
  /** Throws 401 unless the principal's key is still live and its user not erased (cache, else database). */
  assertStillValid(principal: Extract<Principal, { kind: 'user' }>): Promise<void>;
}

/**
 * One socket, from its upgrade to its close. Its state lives in fields of one object, and its handlers are
 * methods: an idle socket is held by 15,000s at once, and a dozen closures and a timer each (as the handler
 * had) cost about a kilobyte more per socket than this. Heartbeats are the gateway's one shared timer.
 */
export class GatewaySocket {
  connection: Connection | null = null;
  /** When a frame or a pong last arrived. */
  lastHeard = Date.now();
  lastPinged = Date.now();
  private isAuthenticating = false;
  /** Whether `ready` went out: frames are carried out from then on. */
  private isReady = false;
  private isClosed = false;
  /**
   * Frames that arrived before `ready`, each waiting to learn whether the socket became ready (true) or closed
   * (false). Null while none wait, as on almost every socket: an idle socket holds no array.
   */
  private waitingForReady: ((isReady: boolean) => void)[] | null = null;
  /** The socket's place in its user's and tenant's counts (connection-limits.ts). */
  private lease: ConnectionLease | null = null;
  private authTimer: NodeJS.Timeout | undefined;
  /** Token bucket: `wsMaxFramesPerSecond` frames a second sustained, bursts of twice that. */
  private tokens: number;
  private refilledAt = Date.now();

  constructor(
    readonly socket: WebSocket,
    /** The TCP socket under `socket`: fan-out writes to it directly (see Connection.sendFrame). */
    private readonly transport: Duplex,
    private readonly cursor: string | undefined,
    private readonly shared: GatewayShared,
  ) {
    this.tokens = shared.maxFramesPerSecond * 2;
    socket.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    socket.on('pong', () => (this.lastHeard = Date.now()));
    // A protocol error (a frame over 64 KiB: 1009, invalid UTF-8: 1007) or a reset connection: ws closes the
    // socket itself, and the close handler cleans up. Without a listener the error would end the process.
    socket.on('error', (error) => shared.log.debug({ err: error }, 'websocket error'));
  }

  /** Authenticates with the query's token at once, or waits up to 5 s for an `auth` frame. */
  begin(accessToken: string | undefined): void {
    if (accessToken !== undefined) {
      void this.start(accessToken);
      return;
    }
    this.authTimer = setTimeout(() => {
      this.authTimer = undefined;
      if (this.connection === null) this.socket.close(CLOSE.unauthorized, 'authenticate within 5 seconds');
    }, AUTH_TIMEOUT_MS);
  }

  closed(): void {
    this.isClosed = true;
    this.lease?.release();
    this.stopAuthTimer();
    this.wakeWaitingFrames(false);
    if (this.connection !== null) this.shared.hub.remove(this.connection);
  }

  /** Resolves once the socket is ready (true) or closed before it was (false): at once if it is either. */
  private untilReady(): Promise<boolean> {
    if (this.isReady || this.isClosed) return Promise.resolve(this.isReady);
    const waiting = (this.waitingForReady ??= []);
    if (waiting.length >= MAX_FRAMES_BEFORE_READY) {
      throw new AppError('rate_limited', `at most ${MAX_FRAMES_BEFORE_READY} frames may wait for ready`);
    }
    return new Promise((resolve) => waiting.push(resolve));
  }

  /**
   * Lets the frames waiting for `ready` go on, started in the order they arrived (or learn that it never came);
   * like any frames of a socket, they then run side by side.
   */
  private wakeWaitingFrames(isReady: boolean): void {
    const waiting = this.waitingForReady;
    this.waitingForReady = null;
    for (const wake of waiting ?? []) wake(isReady);
  }

  private stopAuthTimer(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  // A method, not a narrowed check: the state changes across awaits.
  private isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  private sendFrame(frame: ServerFrame): void {
    if (this.isOpen()) this.socket.send(JSON.stringify(frame));
  }

  private sendError(error: unknown, ref: string | undefined): void {
    const refPart = ref === undefined ? {} : { ref };
    const known = appErrorOf(error);
    if (known !== undefined) {
      if (known.code === 'unavailable') {
        this.shared.log.warn({ err: error, connectionId: this.connection?.id }, 'database unreachable');
      }
      this.sendFrame({ type: 'error', ...refPart, code: known.code, detail: known.message });
      return;
    }
    this.shared.log.error({ err: error, connectionId: this.connection?.id }, 'socket frame failed');
    this.sendFrame({ type: 'error', ...refPart, code: 'internal', detail: 'internal error' });
  }

  private isWithinRate(): boolean {
    const rate = this.shared.maxFramesPerSecond;
    const now = Date.now();
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  // One authentication per socket: a second token (query and frame, or two frames) is refused.
  private async start(token: string): Promise<void> {
    if (this.isAuthenticating) throw new AppError('conflict', 'this socket is already authenticated');
    this.isAuthenticating = true;
    const { hub, retentionDays } = this.shared;
    try {
      const { principal, expiresAtMs } = await this.shared.authenticate(token);
      if (!(await this.admit(principal.tenantId, principal.userId))) return;
      const resumeFrom = this.cursor === undefined ? null : decodeCursor(this.cursor);
      if (resumeFrom !== null) assertCursorRetained(resumeFrom, retentionDays);
      const joined = new Connection(
        principal.tenantId,
        principal.userId,
        this.socket,
        hub.timings.maxBufferedBytes,
        this.transport,
      );
      joined.keyId = principal.keyId;
      joined.expiresAtMs = expiresAtMs;
      if (!this.isOpen()) return;
      this.connection = joined;
      const position = await hub.add(joined, resumeFrom);
      // Credential changes end the hub's sockets from here on; one made while this socket authenticated
      // is in the cache (forgotten there) or the database by now.
      await this.shared.assertStillValid(principal);
      // Ready first, then what a resuming socket missed, then live events: cursors only move forward.
      this.sendFrame({
        type: 'ready',
        user_id: principal.userId,
        connection_id: joined.id,
        server_time: new Date().toISOString(),
        cursor: this.cursor ?? encodeCursor(position),
      });
      this.isReady = true;
      this.wakeWaitingFrames(true);
      if (resumeFrom !== null) await hub.resume(joined, resumeFrom, position);
      if (!this.isOpen()) hub.remove(joined);
    } catch (error) {
      const known = appErrorOf(error);
      const code = known?.code ?? 'internal';
      if (code !== 'unauthorized') this.sendError(error, undefined);
      this.socket.close(
        CLOSE_CODE_OF[code] ?? CLOSE.internal,
        known !== undefined ? known.message.slice(0, 120) : 'internal error',
      );
    }
  }

  /** Counts the socket against its user's and tenant's limits, or closes it with 4429 saying which. */
  private async admit(tenantId: string, userId: string): Promise<boolean> {
    const admitted = await this.shared.connectionLimits.acquire(tenantId, userId);
    if (typeof admitted === 'string') {
      this.socket.close(CLOSE.tooManyConnections, `too many connections for this ${admitted}`);
      return false;
    }
    this.lease = admitted;
    // Closed while it was being counted: the close handler ran before there was a lease to give back.
    if (this.isClosed) admitted.release();
    return !this.isClosed;
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastHeard = Date.now();
    let frame: unknown;
    let text: string;
    try {
      if (isBinary) throw new Error('binary');
      text = textOf(data);
      frame = JSON.parse(text);
    } catch {
      this.socket.close(1007, 'frames are JSON text');
      return;
    }
    // Any JSON may arrive (null, a number, an array): read `ref` only from an object.
    const ref =
      typeof frame === 'object' && frame !== null && typeof (frame as { ref?: unknown }).ref === 'string'
        ? (frame as { ref: string }).ref
        : undefined;
    if (!this.isWithinRate()) {
      this.sendError(
        new AppError('rate_limited', `at most ${this.shared.maxFramesPerSecond} frames a second`),
        ref,
      );
      return;
    }
    // The rules every HTTP body follows too (src/http/input-text.ts), before the frame's own schema.
    if (isJsonDeeperThan(text, MAX_JSON_DEPTH)) {
      this.sendError(
        new AppError('validation_failed', `frames nest at most ${MAX_JSON_DEPTH} levels deep`),
        ref,
      );
      return;
    }
    const unstorable = findUnstorableText(frame);
    if (unstorable !== null) {
      this.sendError(
        new AppError('validation_failed', `${unstorable || '/'} ${UNSTORABLE_TEXT_MESSAGE}`),
        ref,
      );
      return;
    }
    if (!isClientFrame(frame)) {
      this.sendError(new AppError('validation_failed', gatewayAjv.errorsText(isClientFrame.errors)), ref);
      return;
    }
    this.handleFrame(frame).catch((error: unknown) => this.sendError(error, frame.ref));
  }

  private async handleFrame(frame: ClientFrame): Promise<void> {
    if (frame.type === 'auth') {
      this.stopAuthTimer();
      await this.start(frame.token);
      return;
    }
    if (frame.type === 'ping') {
      this.sendFrame({ type: 'pong', ...(frame.ref === undefined ? {} : { ref: frame.ref }) });
      return;
    }
    // Sent before `ready` (with the token, or before the `auth` frame): it waits for the session, which may
    // never come (a token refused, no `auth` within 5 s): the socket is closed then, with nothing carried out.
    if (!(await this.untilReady())) return;
    const current = this.connection;
    if (current === null) throw new Error('a ready socket without a connection');
    // Frames still arriving while a socket whose credentials ended closes are refused, not carried out.
    assertCredentialsLive(current);
    // Another process may have revoked the key (or deleted the tenant) before its bus message reaches this
    // one: the database says, so no frame that arrives after the change is carried out on any process.
    if (!(await this.shared.hub.confirmKey(current))) throw new AppError('unauthorized', ENDED.keyGone);
    // The bus may have ended the socket meanwhile (an erasure, a revocation), or its token expired.
    assertCredentialsLive(current);
    const ctx = tenantContextOf({
      kind: 'user',
      tenantId: current.tenantId,
      userId: current.userId,
      keyId: '',
      via: 'token',
    });
    const ack = (extra: { message?: Extract<ServerFrame, { type: 'ack' }>['message'] } = {}) =>
      this.sendFrame({ type: 'ack', ...(frame.ref === undefined ? {} : { ref: frame.ref }), ...extra });
    if (frame.type === 'send') {
      const { message } = await this.shared.messages.sendMessage(ctx, frame.conversation_id, {
        text: frame.text,
        ...(frame.client_msg_id === undefined ? {} : { client_msg_id: frame.client_msg_id }),
        ...(frame.thread_root_id === undefined ? {} : { thread_root_id: frame.thread_root_id }),
        ...(frame.attachment_ids === undefined ? {} : { attachment_ids: frame.attachment_ids }),
      });
      ack({ message });
    } else if (frame.type === 'read') {
      await this.shared.reads.markRead(
        ctx,
        frame.conversation_id,
        frame.seq === undefined ? {} : { seq: frame.seq },
      );
      ack();
    } else {
      if (!current.conversations.has(frame.conversation_id))
        throw new AppError('not_found', 'conversation not found');
      this.shared.hub.setTyping(current, frame.conversation_id, frame.type === 'typing.start');
      ack();
    }
  }
}

/** Throws 401 once a socket's credentials have ended; a token past its expiry ends them here. */
function assertCredentialsLive(connection: Connection): void {
  if (connection.endedBecause === null && Date.now() >= connection.expiresAtMs)
    connection.endCredentials(ENDED.tokenExpired);
  if (connection.endedBecause !== null) throw new AppError('unauthorized', connection.endedBecause);
}
