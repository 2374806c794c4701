import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { randomId, type RestClient, type TokenSource } from './rest.js';
import type {
  ClientFrame,
  ErrorCode,
  EventOf,
  EventType,
  Message,
  ParleyEvent,
  ReadyFrame,
  ServerFrame,
} from './types.js';

/** What the client needs of a WebSocket: the browser's, or `ws` in Node (the Node entry passes it). */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => SocketLike;

export interface RealtimeOptions {
  /** The server, e.g. `https://chat.example.com`; the socket is `/v1/ws` on it (`ws:` or `wss:`). */
  baseUrl: string;
  /** A user token, or a function returning a fresh one (called for every connection). */
  token: TokenSource;
  /** Resume from this cursor (the last one a previous run kept), instead of from the present. */
  cursor?: string | null;
  /** The WebSocket class; default: the global `WebSocket` (the Node entry defaults to `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Waits between reconnection attempts (default: 500 ms doubling to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /**
   * The REST client, for catching up over `GET /v1/sync` while the socket cannot connect, and for a fresh
   * cursor when the old one expired. Without it, the socket alone is used.
   */
  rest?: RestClient;
  /** Failed connection attempts in a row after which events are caught up over `/v1/sync` (default 3). */
  syncAfterFailures?: number;
  /** With nothing received for this long, the client pings; default 25 s. */
  pingIntervalMs?: number;
  /** …and with no answer this long after the ping, it drops the socket and reconnects; default 10 s. */
  pongTimeoutMs?: number;
  /** A socket not `ready` this long after it was opened is dropped and tried again; default 15 s. */
  connectTimeoutMs?: number;
  /** How many recent events are remembered to drop a repeat (default 10,000). */
  dedupWindow?: number;
}

/**
 * `idle` before `connect()`; `connecting` until the first `ready`; `ready`; `reconnecting` between a lost
 * socket and the next `ready`; `closed` after `close()` or a refusal retrying cannot fix (see `closed`).
 */
export type RealtimeState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

/** A message sent through the outbox, shown at once and updated as it goes. */
export interface OutgoingMessage {
  /** Set by the client (or given by the caller): a retry, even after a reconnect, is stored once. */
  readonly client_msg_id: string;
  readonly conversation_id: string;
  readonly text: string | undefined;
  readonly thread_root_id: string | undefined;
  readonly attachment_ids: readonly string[] | undefined;
  /** `pending` until the server acknowledges it; `sent` with `message`; `failed` with `error`. */
  status: 'pending' | 'sent' | 'failed';
  message?: Message;
  error?: ParleyError;
  /** Resolves with the stored message, or rejects with the refusal. */
  readonly sent: Promise<Message>;
}

export interface RealtimeEvents extends Record<string, unknown[]> {
  /** Every event, each once, in the order received (per conversation: the order the server committed). */
  event: [ParleyEvent];
  /** A socket became ready (after each connection). */
  ready: [ReadyFrame];
  state: [RealtimeState];
  /**
   * The kept cursor could not be resumed (older than the server's event log, or not valid): events were
   * missed. Reload what the application shows (conversations, unread counts, open histories) over HTTP;
   * the events that follow start after a fresh cursor taken before this was emitted.
   */
  reset: [];
  /** A message of the outbox changed status. */
  outbox: [OutgoingMessage];
  /** The client stopped for good: `close()`, or a refusal retrying cannot fix (a static token refused…). */
  closed: [{ code: number; reason: string }];
  /** Something went wrong that the client handles itself (a failed connection, a failed catch-up). */
  warning: [Error];
}

/** Close codes after which reconnecting as is cannot help (docs/REALTIME.md, close codes). */
const CLIENT_BUG_CODES = new Set([1007, 1009, 4403]);
const RESET_CODES = new Set([4400, 4410]);
/** Socket `error` codes after which the same frame, sent again, may succeed. */
const RETRY_CODES = new Set<ErrorCode>(['unavailable', 'rate_limited']);
const OPEN = 1;

type FrameBody = ClientFrame extends infer F ? (F extends { type: string } ? Omit<F, 'ref'> : never) : never;
type AckFrame = Extract<ServerFrame, { type: 'ack' }>;

interface PendingFrame {
  frame: FrameBody;
  /** Sent again after a reconnect, and after a refusal that may pass: true for send and read. */
  resend: boolean;
  resolve: (ack: AckFrame) => void;
  reject: (error: ParleyError) => void;
  attempts: number;
}

/**
 * The real-time half of the SDK: one WebSocket to `/v1/ws` that stays connected and loses nothing.
 * - It authenticates with an `auth` frame (so the token is in no URL), and queues frames until `ready`.
 * - It reconnects after any loss, with backoff and jitter, resuming from the cursor of the last event it
 *   received (`?cursor=`), so every event arrives once; a repeat (an overlap of a catch-up and a socket,
 *   say) is dropped. While the socket cannot connect it catches up over `GET /v1/sync`; when the cursor has
 *   expired it emits `reset` (reload state) and goes on from a fresh cursor.
 * - The outbox sends messages optimistically: `send()` returns at once, and each message is sent in order
 *   per conversation, again after a reconnect if it was not acknowledged, with the same `client_msg_id`,
 *   which the server stores at most once.
 */
export class RealtimeClient extends Emitter<RealtimeEvents> {
  readonly #options: RealtimeOptions;
  readonly #WebSocket: WebSocketConstructor;
  #state: RealtimeState = 'idle';
  #cursor: string | null;
  #socket: SocketLike | null = null;
  #userId: string | null = null;
  /** Frames waiting for `ready`, in order. */
  #waiting: PendingFrame[] = [];
  /** Frames written on the current socket, by ref. */
  #inflight = new Map<string, PendingFrame>();
  /** Frames refused for a reason that may pass, waiting to be written again. */
  readonly #retrying = new Set<PendingFrame>();
  #nextRef = 0;
  /** Failed connection attempts since the last `ready`. */
  #failures = 0;
  #stop = new AbortController();
  #heartbeat: ReturnType<typeof setTimeout> | null = null;
  #awaitingPong = false;
  readonly #seen = new Map<string, true>();
  /** Per conversation, the outbox's messages not yet acknowledged, oldest first; the first is in flight. */
  readonly #outbox = new Map<string, OutgoingMessage[]>();
  readonly #outboxPending = new Map<
    OutgoingMessage,
    { resolve: (m: Message) => void; reject: (e: ParleyError) => void }
  >();

  constructor(options: RealtimeOptions) {
    super();
    this.#options = options;
    this.#cursor = options.cursor ?? null;
    const constructor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (constructor === undefined) {
      throw new Error(
        'no WebSocket here: pass options.WebSocket (in Node, import the client from its Node entry)',
      );
    }
    this.#WebSocket = constructor;
  }

  get state(): RealtimeState {
    return this.#state;
  }

  /** The cursor of the last event received (or of `ready`): keep it to resume from it in a later run. */
  get cursor(): string | null {
    return this.#cursor;
  }

  /** The user the socket is authenticated as, once `ready`. */
  get userId(): string | null {
    return this.#userId;
  }

  /** Messages of the outbox not yet acknowledged, in the order they were sent. */
  get outbox(): OutgoingMessage[] {
    return [...this.#outbox.values()].flat();
  }

  /** Calls `listener` on every event of one type. */
  onEvent<T extends EventType>(type: T, listener: (event: EventOf<T>) => void): () => void {
    return this.on('event', (event) => {
      if (event.type === type) listener(event as EventOf<T>);
    });
  }

  /** Connects; resolves at the first `ready` (the client keeps reconnecting on its own after that). */
  connect(): Promise<ReadyFrame> {
    if (this.#state !== 'idle') throw new Error(`connect() was already called (state: ${this.#state})`);
    const ready = new Promise<ReadyFrame>((resolve, reject) => {
      const offReady = this.on('ready', (frame) => {
        offReady();
        offClosed();
        resolve(frame);
      });
      const offClosed = this.on('closed', ({ code, reason }) => {
        offReady();
        offClosed();
        reject(new ParleyError(code === 4401 ? 'unauthorized' : 'network', `closed ${code}: ${reason}`));
      });
    });
    this.#setState('connecting');
    void this.#run().catch((error: unknown) => {
      this.#warn(error);
      this.#finish(1011, 'the client failed');
    });
    return ready;
  }

  /** Closes the socket and stops reconnecting; frames and outbox messages not yet sent are rejected. */
  close(): void {
    this.#finish(1000, 'closed by the client');
  }

  /**
   * Sends a message through the outbox: returns at once with the message `pending`; it goes out when the
   * socket is ready, after the earlier ones of its conversation, and again after a reconnect until the
   * server acknowledges it (stored once, by its `client_msg_id`). A refusal (not a member, a bad input)
   * marks it `failed` and the next one goes.
   */
  send(
    conversationId: string,
    message: { text?: string; thread_root_id?: string; attachment_ids?: string[]; client_msg_id?: string },
  ): OutgoingMessage {
    if (this.#state === 'closed') throw new ParleyError('network', 'the client is closed');
    let settle!: { resolve: (m: Message) => void; reject: (e: ParleyError) => void };
    const sent = new Promise<Message>((resolve, reject) => (settle = { resolve, reject }));
    sent.catch(() => undefined); // A failure is reported through `status` and `outbox` too.
    const outgoing: OutgoingMessage = {
      client_msg_id: message.client_msg_id ?? randomId(),
      conversation_id: conversationId,
      text: message.text,
      thread_root_id: message.thread_root_id,
      attachment_ids: message.attachment_ids,
      status: 'pending',
      sent,
    };
    this.#outboxPending.set(outgoing, settle);
    const queue = this.#outbox.get(conversationId) ?? [];
    this.#outbox.set(conversationId, [...queue, outgoing]);
    this.emit('outbox', outgoing);
    if (queue.length === 0) this.#sendHead(conversationId);
    return outgoing;
  }

  /** Moves the caller's read watermark forward (to `seq`, or the latest message); sent again after a reconnect. */
  markRead(conversationId: string, seq?: number): Promise<void> {
    return this.#request(
      { type: 'read', conversation_id: conversationId, ...(seq === undefined ? {} : { seq }) },
      true,
    ).then(() => undefined);
  }

  /** Tells the other members the caller is typing (or stopped). Ephemeral: dropped when not connected. */
  typing(conversationId: string, typing: boolean): Promise<void> {
    if (this.#state !== 'ready') return Promise.resolve();
    return this.#request(
      { type: typing ? 'typing.start' : 'typing.stop', conversation_id: conversationId },
      false,
    ).then(() => undefined);
  }

  /**
   * Catches up over HTTP: every event after the kept cursor, page by page, through the same pipeline as the
   * socket's (each once). The client does this by itself while the socket cannot connect.
   */
  async catchUp(): Promise<void> {
    const rest = this.#options.rest;
    if (rest === undefined) throw new Error('catchUp() needs options.rest');
    if (this.#cursor === null) return;
    for (;;) {
      let page;
      try {
        page = await rest.get('/v1/sync', { params: { query: { since: this.#cursor, limit: 1000 } } });
      } catch (error) {
        if (
          error instanceof ParleyError &&
          (error.code === 'cursor_expired' || error.code === 'validation_failed')
        ) {
          await this.#reset();
          return;
        }
        throw error;
      }
      for (const event of page.events) this.#receive(event);
      this.#cursor = page.next_cursor;
      if (!page.has_more) return;
    }
  }

  // — connection —

  /** Connects, and reconnects after every loss, until closed. */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const stopped = () => signal.aborted; // Read afresh after each await.
    while (!stopped()) {
      const outcome = await this.#connectOnce();
      if (stopped()) return;
      if (outcome.kind === 'final') {
        this.#finish(outcome.code, outcome.reason);
        return;
      }
      if (outcome.kind === 'reset') await this.#reset();
      this.#setState('reconnecting');
      if (!outcome.wasReady) this.#failures++;
      if (this.#failures >= (this.#options.syncAfterFailures ?? 3) && this.#options.rest !== undefined) {
        await this.catchUp().catch((error: unknown) => this.#warn(error));
      }
      try {
        // After a socket that was ready, the first wait is short (a deploy, a network change): the
        // jitter still spreads the clients of a restarted server over it.
        await sleep(backoffDelay(Math.max(0, this.#failures - 1), this.#options.backoff), signal);
      } catch {
        return;
      }
    }
  }

  /** One socket, from opening to its end: how it ended decides what comes next. */
  async #connectOnce(): Promise<
    | { kind: 'retry'; wasReady: boolean }
    | { kind: 'reset'; wasReady: boolean }
    | { kind: 'final'; code: number; reason: string }
  > {
    let token: string;
    try {
      token = await (typeof this.#options.token === 'function' ? this.#options.token() : this.#options.token);
    } catch (error) {
      this.#warn(error);
      return { kind: 'retry', wasReady: false };
    }
    const url = new URL('/v1/ws', this.#options.baseUrl.replace(/^http/, 'ws'));
    if (this.#cursor !== null) url.searchParams.set('cursor', this.#cursor);
    return new Promise((resolve) => {
      let wasReady = false;
      let socket: SocketLike;
      try {
        socket = new this.#WebSocket(url.toString());
      } catch (error) {
        this.#warn(error);
        resolve({ kind: 'retry', wasReady: false });
        return;
      }
      this.#socket = socket;
      const ended = (code: number, reason: string) => {
        if (this.#socket !== socket) return;
        this.#socket = null;
        socket.onopen = socket.onmessage = socket.onclose = null;
        // Not null: \`ws\` reports a close before the handshake as an error, which must find a listener.
        socket.onerror = () => undefined;
        this.#stopHeartbeat();
        this.#requeueInflight();
        if (this.#stop.signal.aborted) resolve({ kind: 'retry', wasReady });
        else if (RESET_CODES.has(code)) resolve({ kind: 'reset', wasReady });
        else if (CLIENT_BUG_CODES.has(code)) resolve({ kind: 'final', code, reason });
        else if (code === 4401 && typeof this.#options.token !== 'function')
          resolve({ kind: 'final', code, reason });
        else resolve({ kind: 'retry', wasReady });
      };
      this.#drop = () => {
        try {
          socket.close(4000, 'the server does not answer');
        } catch {
          // Already closing.
        }
        ended(1006, 'the server does not answer');
      };
      // A connection that never completes (a network that drops packets silently) is given up on.
      this.#heartbeat = setTimeout(() => this.#drop(), this.#options.connectTimeoutMs ?? 15_000);
      socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token }));
      socket.onerror = () => undefined; // `close` follows, with the code.
      socket.onclose = (event) => ended(event.code, event.reason);
      socket.onmessage = (event) => {
        this.#armHeartbeat();
        let frame: ServerFrame;
        try {
          frame = JSON.parse(String(event.data)) as ServerFrame;
        } catch {
          return;
        }
        if (frame.type === 'ready') {
          wasReady = true;
          this.#failures = 0;
          this.#onReady(frame);
        } else this.#onFrame(frame);
      };
    });
  }

  /** Drops the current socket at once (a dead connection that never says so). */
  #drop: () => void = () => undefined;

  #onReady(frame: ReadyFrame): void {
    this.#cursor = frame.cursor;
    this.#userId = frame.user_id;
    this.#setState('ready');
    this.#armHeartbeat();
    this.emit('ready', frame);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const pending of waiting) this.#write(pending);
  }

  #onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'event':
        this.#receive(frame.event);
        return;
      case 'ack':
      case 'pong':
      case 'error': {
        if (frame.type === 'pong') this.#awaitingPong = false;
        const pending = frame.ref === undefined ? undefined : this.#inflight.get(frame.ref);
        if (pending === undefined || frame.ref === undefined) {
          if (frame.type === 'error') this.emit('warning', new ParleyError(frame.code, frame.detail));
          return;
        }
        this.#inflight.delete(frame.ref);
        if (frame.type !== 'error') pending.resolve(frame as AckFrame);
        else if (pending.resend && RETRY_CODES.has(frame.code)) this.#retryLater(pending);
        else pending.reject(new ParleyError(frame.code, frame.detail));
        return;
      }
      default:
        return;
    }
  }

  /** Emits an event once: a logged event seen before (same type, conversation, time and data) is dropped. */
  #receive(event: ParleyEvent): void {
    if ('cursor' in event && typeof event.cursor === 'string') {
      const key = `${event.type}\u0000${event.conversation_id}\u0000${event.ts}\u0000${JSON.stringify(event.data)}`;
      if (this.#seen.has(key)) return;
      this.#seen.set(key, true);
      if (this.#seen.size > (this.#options.dedupWindow ?? 10_000)) {
        this.#seen.delete(this.#seen.keys().next().value as string);
      }
      this.#cursor = event.cursor;
    }
    this.emit('event', event);
  }

  /** The kept cursor cannot be resumed: take a fresh one, tell the application to reload, go on from it. */
  async #reset(): Promise<void> {
    this.#cursor = null;
    const rest = this.#options.rest;
    try {
      if (rest !== undefined) this.#cursor = (await rest.get('/v1/sync')).next_cursor;
    } catch (error) {
      // The next socket starts from the present instead (its `ready` carries the cursor).
      this.#warn(error);
    }
    this.emit('reset');
  }

  #finish(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#stop.abort(new ParleyError('network', reason));
    this.#setState('closed');
    const socket = this.#socket;
    this.#socket = null;
    this.#stopHeartbeat();
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      // Not null: \`ws\` reports a close before the handshake as an error, which must find a listener.
      socket.onerror = () => undefined;
      try {
        socket.close(1000, 'closed by the client');
      } catch {
        // Not open yet, or already closing.
      }
    }
    const error = new ParleyError(code === 4401 ? 'unauthorized' : 'network', `closed ${code}: ${reason}`);
    for (const pending of [...this.#waiting, ...this.#inflight.values(), ...this.#retrying])
      pending.reject(error);
    this.#waiting = [];
    this.#inflight.clear();
    this.#retrying.clear();
    const outbox = this.outbox;
    this.#outbox.clear();
    for (const outgoing of outbox) this.#settleHead(outgoing, undefined, error);
    this.emit('closed', { code, reason });
  }

  #warn(error: unknown): void {
    this.#warn(error);
  }

  #setState(state: RealtimeState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }

  // — frames —

  #request(frame: FrameBody, resend: boolean): Promise<AckFrame> {
    if (this.#state === 'closed') return Promise.reject(new ParleyError('network', 'the client is closed'));
    return new Promise((resolve, reject) => {
      const pending: PendingFrame = { frame, resend, resolve, reject, attempts: 0 };
      if (this.#state === 'ready' && this.#socket !== null) this.#write(pending);
      else this.#waiting.push(pending);
    });
  }

  #write(pending: PendingFrame): void {
    const socket = this.#socket;
    if (this.#state !== 'ready' || socket === null || socket.readyState !== OPEN) {
      this.#waiting.push(pending);
      return;
    }
    const ref = `r${++this.#nextRef}`;
    pending.attempts++;
    this.#inflight.set(ref, pending);
    socket.send(JSON.stringify({ ...pending.frame, ref }));
  }

  /** The socket is gone: what may be sent again waits for the next `ready`; the rest is rejected. */
  #requeueInflight(): void {
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    const again = inflight.filter((pending) => pending.resend);
    for (const pending of inflight) {
      if (!pending.resend) pending.reject(new ParleyError('network', 'the connection was lost'));
    }
    this.#waiting = [...again, ...this.#waiting];
  }

  #retryLater(pending: PendingFrame): void {
    const delay = backoffDelay(Math.min(pending.attempts - 1, 6), { initialMs: 250, maxMs: 10_000 });
    this.#retrying.add(pending);
    setTimeout(() => {
      if (!this.#retrying.delete(pending)) return; // The client closed meanwhile, and rejected it.
      this.#write(pending);
    }, delay);
  }

  // — the outbox —

  #sendHead(conversationId: string): void {
    const head = this.#outbox.get(conversationId)?.[0];
    if (head === undefined) return;
    const frame = {
      type: 'send' as const,
      conversation_id: head.conversation_id,
      client_msg_id: head.client_msg_id,
      ...(head.text === undefined ? {} : { text: head.text }),
      ...(head.thread_root_id === undefined ? {} : { thread_root_id: head.thread_root_id }),
      ...(head.attachment_ids === undefined ? {} : { attachment_ids: [...head.attachment_ids] }),
    };
    this.#request(frame, true).then(
      (ack) => this.#settleHead(head, ack.message === undefined ? undefined : ack.message),
      (error: unknown) =>
        this.#settleHead(
          head,
          undefined,
          error instanceof ParleyError ? error : new ParleyError('internal', String(error)),
        ),
    );
  }

  #settleHead(outgoing: OutgoingMessage, message: Message | undefined, error?: ParleyError): void {
    const settle = this.#outboxPending.get(outgoing);
    if (settle === undefined) return; // Settled already (the client closed).
    this.#outboxPending.delete(outgoing);
    if (message !== undefined) {
      outgoing.status = 'sent';
      outgoing.message = message;
      settle.resolve(message);
    } else {
      outgoing.status = 'failed';
      outgoing.error = error ?? new ParleyError('internal', 'acknowledged without the message');
      settle.reject(outgoing.error);
    }
    const rest = (this.#outbox.get(outgoing.conversation_id) ?? []).filter((m) => m !== outgoing);
    if (rest.length === 0) this.#outbox.delete(outgoing.conversation_id);
    else this.#outbox.set(outgoing.conversation_id, rest);
    this.emit('outbox', outgoing);
    if (this.#state !== 'closed') this.#sendHead(outgoing.conversation_id);
  }

  // — heartbeat —

  /** Something arrived: the connection is alive; ping after the next quiet interval. */
  #armHeartbeat(): void {
    this.#stopHeartbeat();
    this.#awaitingPong = false;
    this.#heartbeat = setTimeout(() => this.#ping(), this.#options.pingIntervalMs ?? 25_000);
  }

  #ping(): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== OPEN) return;
    this.#awaitingPong = true;
    socket.send(JSON.stringify({ type: 'ping' }));
    this.#heartbeat = setTimeout(() => {
      if (this.#awaitingPong) this.#drop();
    }, this.#options.pongTimeoutMs ?? 10_000);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) clearTimeout(this.#heartbeat);
    this.#heartbeat = null;
  }
}
