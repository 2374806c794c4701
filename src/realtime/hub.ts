import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { Orm } from '../db/client.ts';
import { conversationMembers } from '../db/schema/conversations.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { currentSnapshot, readEvents, type StoredEvent } from '../modules/events/events.repository.ts';
import { toEventFrame, type EventFrame } from '../modules/sync/sync.service.ts';
import type { Bus, BusMessage } from './bus.ts';
import { encodeCursor, isVisibleIn, parseSnapshot, type Cursor, type Snapshot } from './cursor.ts';

/** Close codes of the gateway (docs/REALTIME.md). */
export const CLOSE = {
  unauthorized: 4401,
  forbidden: 4403,
  slowConsumer: 4008,
  tooManyConnections: 4429,
  badRequest: 4400,
  cursorExpired: 4410,
  internal: 1011,
  goingAway: 1001,
} as const;

/** A socket's buffered output past which it is closed as a slow consumer (the client resyncs). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Events read from the log per query. */
const WINDOW_PAGE = 500;
/** How often each feed reads the log even without a wake-up: the bus is only the fast path. */
const SAFETY_POLL_MS = 2000;
const TYPING_EXPIRES_MS = 6000;
const OFFLINE_AFTER_MS = 30_000;

/** One authenticated socket. */
export class Connection {
  readonly id = randomUUID();
  /** Conversations whose events this socket receives; kept current by membership events. */
  conversations = new Set<string>();
  /** Live events held back while the connection catches up from its resume cursor. */
  private held: EventFrame[] | null = null;
  /**
   * The snapshot the client had read up to when it resumed. Another process's feed may be ahead of this
   * one's, so live events already visible there were delivered before the reconnect: they are skipped.
   */
  resumedAt: Snapshot | null = null;

  constructor(
    readonly tenantId: string,
    readonly userId: string,
    readonly socket: WebSocket,
  ) {}

  /** Sends a frame, unless the client reads too slowly: then the socket is closed so it can resync. */
  send(frame: object): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.socket.close(CLOSE.slowConsumer, 'slow consumer: reconnect with your last cursor');
      return;
    }
    this.socket.send(JSON.stringify(frame));
  }

  /** Whether an event of the log concerns this socket's user. */
  receives(event: StoredEvent): boolean {
    return (
      event.subjectUserId === this.userId ||
      (!event.isPrivate && this.conversations.has(event.conversationId))
    );
  }

  /** Applies what an event changes about which conversations this socket follows. */
  follow(event: StoredEvent): void {
    const data = event.data as { user_id?: unknown; member_ids?: unknown };
    if (event.type === 'member.added' && data.user_id === this.userId)
      this.conversations.add(event.conversationId);
    if (event.type === 'member.removed' && data.user_id === this.userId) {
      this.conversations.delete(event.conversationId);
    }
    if (
      event.type === 'conversation.created' &&
      Array.isArray(data.member_ids) &&
      data.member_ids.includes(this.userId)
    ) {
      this.conversations.add(event.conversationId);
    }
  }

  /** Delivers a live event now, or holds it until the catch-up is done. */
  deliver(event: StoredEvent, frame: EventFrame): void {
    if (this.resumedAt !== null && isVisibleIn(BigInt(event.tx), this.resumedAt)) return;
    if (this.held === null) this.send({ type: 'event', event: frame });
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

/**
 * Reads one tenant's event log for this process and hands each event to the local sockets that receive
 * it. Its position is a snapshot; each read covers what committed since, so nothing is skipped however
 * late it commits. Registrations happen between reads, so a socket's first live event follows its start.
 */
class TenantFeed {
  private position: Cursor;
  private isRunning = false;
  private isDirty = false;
  private readonly registrations: {
    connection: Connection;
    prepare: () => Promise<void>;
    resolve: (cursor: Cursor) => void;
    reject: (error: unknown) => void;
  }[] = [];
  readonly connections = new Set<Connection>();

  constructor(
    private readonly orm: Orm,
    readonly tenantId: string,
    start: Cursor,
    private readonly log: FastifyBaseLogger,
  ) {
    this.position = start;
  }

  /**
   * Adds a socket between two reads; resolves with the position its live events start after. `prepare`
   * (loading the socket's conversations) runs in that same pause, so the next read filters with them.
   */
  register(connection: Connection, prepare: () => Promise<void>): Promise<Cursor> {
    return new Promise((resolve, reject) => {
      this.registrations.push({ connection, prepare, resolve, reject });
      this.wake();
    });
  }

  hasPendingRegistrations(): boolean {
    return this.registrations.length > 0;
  }

  wake(): void {
    this.isDirty = true;
    if (!this.isRunning) void this.run();
  }

  private async run(): Promise<void> {
    this.isRunning = true;
    try {
      while (this.isDirty || this.registrations.length > 0) {
        for (const { connection, prepare, resolve, reject } of this.registrations.splice(0)) {
          try {
            await prepare();
            this.connections.add(connection);
            resolve(this.position);
          } catch (error) {
            reject(error);
          }
        }
        if (!this.isDirty) continue;
        this.isDirty = false;
        await this.readWindow();
      }
    } catch (error) {
      this.log.error(
        { err: error, tenantId: this.tenantId },
        'reading the event log failed; retrying on the next wake-up',
      );
    } finally {
      this.isRunning = false;
    }
  }

  private async readWindow(): Promise<void> {
    const prev = this.position.prev;
    await inTenant(this.orm, this.tenantId, async (scope) => {
      const now = await currentSnapshot(scope.tx);
      const window = { prev, now, at: this.position.at };
      const at = Date.now();
      let afterId = 0;
      for (;;) {
        const page = await readEvents(scope, { prev, now, afterId, limit: WINDOW_PAGE });
        for (const event of page) this.dispatch(event, toEventFrame(event, window));
        const last = page.at(-1);
        if (!last || page.length < WINDOW_PAGE) break;
        afterId = last.id;
      }
      this.position = { prev: now, at };
    });
  }

  private dispatch(event: StoredEvent, frame: EventFrame): void {
    for (const connection of this.connections) {
      // Membership changes first, so a newly added member receives the event that adds it.
      connection.follow(event);
      if (connection.receives(event)) connection.deliver(event, frame);
    }
  }
}

/** The sockets of this process, the feeds that serve them, and the ephemeral typing and presence. */
export class Hub {
  private readonly feeds = new Map<string, TenantFeed>();
  private readonly feedStarts = new Map<string, Promise<TenantFeed>>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly typingTimers = new Map<string, NodeJS.Timeout>();
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  /** Processes on which each user has sockets, as the bus reports them: online while non-empty. */
  private readonly presence = new Map<string, Set<string>>();
  private readonly unsubscribe: () => void;
  private readonly poll: NodeJS.Timeout;
  readonly processId = randomUUID();

  constructor(
    private readonly orm: Orm,
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
  ) {
    this.unsubscribe = bus.subscribe((message) => this.onBusMessage(message));
    this.poll = setInterval(() => {
      for (const feed of this.feeds.values()) feed.wake();
    }, SAFETY_POLL_MS);
    this.poll.unref();
  }

  private userKey = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;

  /** Local sockets of one user. */
  countConnections(tenantId: string, userId: string): number {
    return this.byUser.get(this.userKey(tenantId, userId))?.size ?? 0;
  }

  /**
   * Adds an authenticated socket. Returns the position its live events start after; a client resuming
   * from an older cursor is first sent what it missed up to there, then the live events held meanwhile.
   */
  async add(connection: Connection, resumeFrom: Cursor | null): Promise<Cursor> {
    const key = this.userKey(connection.tenantId, connection.userId);
    const sockets = this.byUser.get(key) ?? new Set();
    const isFirstSocket = sockets.size === 0;
    sockets.add(connection);
    this.byUser.set(key, sockets);
    clearTimeout(this.offlineTimers.get(key));
    this.offlineTimers.delete(key);

    const feed = await this.feedOf(connection.tenantId);
    if (resumeFrom !== null) {
      connection.holdLiveEvents();
      connection.resumedAt = parseSnapshot(resumeFrom.now ?? resumeFrom.prev);
    }
    const start = await feed.register(connection, async () => {
      connection.conversations = await this.loadConversations(connection.tenantId, connection.userId);
    });
    if (isFirstSocket) {
      this.bus.publish({
        kind: 'presence',
        tenantId: connection.tenantId,
        userId: connection.userId,
        processId: this.processId,
        isOnline: true,
      });
    }
    return start;
  }

  /** Sends a resuming socket what it missed (after its ready frame), then the live events held meanwhile. */
  resume(connection: Connection, from: Cursor, until: Cursor): Promise<void> {
    return this.catchUp(connection, from, until);
  }

  /** The tenant's feed in this process, started at the present on first use (once, however many ask). */
  private feedOf(tenantId: string): Promise<TenantFeed> {
    let start = this.feedStarts.get(tenantId);
    if (!start) {
      start = currentSnapshot(this.orm).then((snapshot) => {
        const feed = new TenantFeed(this.orm, tenantId, { prev: snapshot, at: Date.now() }, this.log);
        this.feeds.set(tenantId, feed);
        return feed;
      });
      this.feedStarts.set(tenantId, start);
      start.catch(() => this.feedStarts.delete(tenantId));
    }
    return start;
  }

  /** Sends a resuming socket the events between its cursor and the feed's start position. */
  private async catchUp(connection: Connection, from: Cursor, until: Cursor): Promise<void> {
    let cursor = from;
    await inTenant(this.orm, connection.tenantId, async (scope) => {
      for (;;) {
        const now = cursor.now ?? until.prev;
        const window = { prev: cursor.prev, now, at: cursor.at };
        const page = await readEvents(scope, {
          prev: cursor.prev,
          now,
          afterId: cursor.afterId ?? 0,
          limit: WINDOW_PAGE,
          userId: connection.userId,
        });
        for (const event of page) connection.send({ type: 'event', event: toEventFrame(event, window) });
        const last = page.at(-1);
        if (last && page.length === WINDOW_PAGE) {
          cursor = { prev: cursor.prev, now, afterId: last.id, at: cursor.at };
          continue;
        }
        if (now === until.prev) break;
        // The resume cursor was mid-window: finish it, then read on up to the feed's position.
        cursor = { prev: now, at: Date.now() };
      }
    });
    connection.releaseLiveEvents();
  }

  remove(connection: Connection): void {
    const feed = this.feeds.get(connection.tenantId);
    feed?.connections.delete(connection);
    // A tenant with no sockets left here is not read any more; the next socket starts a fresh feed.
    if (feed && feed.connections.size === 0 && !feed.hasPendingRegistrations()) {
      this.feeds.delete(connection.tenantId);
      this.feedStarts.delete(connection.tenantId);
    }
    const key = this.userKey(connection.tenantId, connection.userId);
    const sockets = this.byUser.get(key);
    sockets?.delete(connection);
    if (sockets && sockets.size === 0) {
      this.byUser.delete(key);
      // Offline only after a grace period: a reconnecting client should not flicker.
      this.offlineTimers.set(
        key,
        setTimeout(() => {
          this.offlineTimers.delete(key);
          if (this.byUser.has(key)) return;
          this.bus.publish({
            kind: 'presence',
            tenantId: connection.tenantId,
            userId: connection.userId,
            processId: this.processId,
            isOnline: false,
          });
        }, OFFLINE_AFTER_MS).unref(),
      );
    }
  }

  /** A user typing in a conversation: announced to its members, expiring unless renewed. */
  setTyping(connection: Connection, conversationId: string, isTyping: boolean): void {
    const key = `${this.userKey(connection.tenantId, connection.userId)}\u0000${conversationId}`;
    clearTimeout(this.typingTimers.get(key));
    this.typingTimers.delete(key);
    const message = {
      kind: 'typing' as const,
      tenantId: connection.tenantId,
      conversationId,
      userId: connection.userId,
    };
    this.bus.publish({ ...message, isTyping });
    if (isTyping) {
      this.typingTimers.set(
        key,
        setTimeout(() => {
          this.typingTimers.delete(key);
          this.bus.publish({ ...message, isTyping: false });
        }, TYPING_EXPIRES_MS).unref(),
      );
    }
  }

  private async loadConversations(tenantId: string, userId: string): Promise<Set<string>> {
    const rows = await inTenant(this.orm, tenantId, (scope) =>
      scope.tx
        .select({ id: conversationMembers.conversationId })
        .from(conversationMembers)
        .where(and(eq(conversationMembers.tenantId, tenantId), eq(conversationMembers.userId, userId))),
    );
    return new Set(rows.map((row) => row.id));
  }

  private onBusMessage(message: BusMessage): void {
    if (message.kind === 'events') {
      this.feeds.get(message.tenantId)?.wake();
      return;
    }
    const local = [...(this.feeds.get(message.tenantId)?.connections ?? [])];
    const now = new Date().toISOString();
    if (message.kind === 'typing') {
      const frame = {
        type: 'event',
        event: {
          type: message.isTyping ? 'typing.started' : 'typing.stopped',
          conversation_id: message.conversationId,
          data: { user_id: message.userId },
          ts: now,
        },
      };
      for (const connection of local) {
        if (connection.userId !== message.userId && connection.conversations.has(message.conversationId)) {
          connection.send(frame);
        }
      }
      return;
    }
    this.onPresence(message, local, now);
  }

  private onPresence(
    message: Extract<BusMessage, { kind: 'presence' }>,
    local: Connection[],
    now: string,
  ): void {
    const key = this.userKey(message.tenantId, message.userId);
    const processes = this.presence.get(key) ?? new Set<string>();
    const wasOnline = processes.size > 0;
    if (message.isOnline) processes.add(message.processId);
    else processes.delete(message.processId);
    if (processes.size > 0) this.presence.set(key, processes);
    else this.presence.delete(key);
    const isOnline = processes.size > 0;
    if (wasOnline === isOnline || local.length === 0) return;
    // Visible to the users who share a conversation with the user.
    void this.loadConversations(message.tenantId, message.userId)
      .then((theirs) => {
        for (const connection of local) {
          if (connection.userId === message.userId) continue;
          const shared = [...theirs].find((id) => connection.conversations.has(id));
          if (shared === undefined) continue;
          connection.send({
            type: 'event',
            event: {
              type: 'presence.changed',
              conversation_id: shared,
              data: { user_id: message.userId, status: isOnline ? 'online' : 'offline' },
              ts: now,
            },
          });
        }
      })
      .catch((error: unknown) => this.log.warn({ err: error }, 'presence fan-out failed'));
  }

  /** The position a fresh socket's ready frame carries. */
  static cursorText(cursor: Cursor): string {
    return encodeCursor(cursor);
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.poll);
    for (const timer of [...this.typingTimers.values(), ...this.offlineTimers.values()]) clearTimeout(timer);
    for (const feed of this.feeds.values()) {
      for (const connection of feed.connections)
        connection.socket.close(CLOSE.goingAway, 'server shutting down');
    }
  }
}
