import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { tenantContextOf } from '../context.ts';
import type { Orm } from '../db/client.ts';
import { inTenant, tenantDb } from '../db/tenant-scope.ts';
import type { ConversationsService } from '../modules/conversations/conversations.service.ts';
import { currentSnapshot, readEvents } from '../modules/events/events.repository.ts';
import type { ServerFrame } from '../modules/events/events.schemas.ts';
import { toEventFrame } from '../modules/sync/sync.service.ts';
import type { Bus, BusMessage } from '../modules/events/events.bus.ts';
import { CLOSE, DEFAULT_HUB_TIMINGS, type Connection, type HubTimings } from './connection.ts';
import { parseSnapshot, type Cursor } from '../modules/events/events.cursor.ts';
import { TenantFeed, WINDOW_PAGE } from './feed.ts';
import { SocketCredentials, type CredentialServices } from './socket-credentials.ts';

/** What the hub asks of the modules, through their services (never their repositories). */
export interface HubServices extends CredentialServices {
  conversations: Pick<ConversationsService, 'listConversationIdsOfUser'>;
}

export interface HubDeps {
  /** Serves the hub's reads of the event log for a resuming socket, and the log's current position. */
  orm: Orm;
  /** Serves only the feeds' reads of the log, from connections of their own (see `Database.deliveryOrm`). */
  feedOrm?: Orm;
  bus: Bus;
  log: FastifyBaseLogger;
  timings?: Partial<HubTimings> | undefined;
  services: HubServices;
}

/** The sockets of this process, the feeds that serve them, and the ephemeral typing and presence. */
export class Hub {
  private readonly feeds = new Map<string, TenantFeed>();
  private readonly feedStarts = new Map<string, Promise<TenantFeed>>();
  /**
   * Each tenant's sockets from the moment `add` is called until `remove`: its feed lives (and is woken by
   * the bus and the safety poll) while this is non-empty. Taken synchronously in `add`, before any await,
   * so a socket still registering holds its feed as firmly as one already delivering.
   */
  private readonly tenantSockets = new Map<string, Set<Connection>>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly typingTimers = new Map<string, NodeJS.Timeout>();
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  /**
   * Processes on which each user has sockets, as the bus reports them, each with when its entry expires
   * (ms since the epoch, on this process's clock): online while non-empty. The expiry is the announcing
   * process's TTL from the moment its message arrived, so processes with different TTLs agree.
   */
  private readonly presence = new Map<string, Map<string, number>>();
  private readonly renewal: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly poll: NodeJS.Timeout;
  private readonly credentials: SocketCredentials;
  private readonly orm: Orm;
  private readonly feedOrm: Orm;
  private readonly bus: Bus;
  private readonly log: FastifyBaseLogger;
  private readonly services: HubServices;
  readonly processId = randomUUID();
  readonly timings: Required<HubTimings>;

  constructor({ orm, feedOrm = orm, bus, log, timings = {}, services }: HubDeps) {
    this.orm = orm;
    this.feedOrm = feedOrm;
    this.bus = bus;
    this.log = log;
    this.services = services;
    this.timings = { ...DEFAULT_HUB_TIMINGS, ...timings };
    this.credentials = new SocketCredentials(services, log, this.timings.credentialCheckMs);
    this.unsubscribe = bus.subscribe((message) => this.onBusMessage(message));
    this.poll = setInterval(() => {
      for (const feed of this.feeds.values()) feed.wake();
    }, this.timings.safetyPollMs);
    this.poll.unref();
    this.renewal = setInterval(() => this.renewPresence(), this.timings.presenceRenewMs);
    this.renewal.unref();
  }

  /**
   * Re-announces the users this process has sockets for (or is in the offline grace of), and drops the
   * entries of processes that stopped renewing theirs (a process killed with -9 announces nothing).
   */
  private renewPresence(): void {
    const users: [string, string][] = [];
    for (const key of new Set([...this.byUser.keys(), ...this.offlineTimers.keys()])) {
      const [tenantId = '', userId = ''] = key.split('\u0000');
      users.push([tenantId, userId]);
    }
    for (let start = 0; start < users.length; start += 500) {
      const chunk = users.slice(start, start + 500);
      this.bus.publish({
        kind: 'presence_renewal',
        processId: this.processId,
        users: chunk,
        ttlMs: this.timings.presenceTtlMs,
      });
    }
    const now = Date.now();
    for (const [key, processes] of [...this.presence]) {
      for (const [processId, expiresAt] of processes) {
        if (expiresAt < now && processId !== this.processId) processes.delete(processId);
      }
      if (processes.size > 0) continue;
      this.presence.delete(key);
      const [tenantId = '', userId = ''] = key.split('\u0000');
      this.announcePresence(tenantId, userId, false);
    }
  }

  private userKey = (tenantId: string, userId: string) => `${tenantId}\u0000${userId}`;

  /**
   * Whether the user has a socket open: on this process (exact), or on another as the bus announced it
   * (with Redis; such an announcement lasts through that process's offline grace). Push asks it.
   */
  isOnline(tenantId: string, userId: string): boolean {
    const key = this.userKey(tenantId, userId);
    if (this.byUser.has(key)) return true;
    const now = Date.now();
    for (const [processId, expiresAt] of this.presence.get(key) ?? []) {
      if (processId !== this.processId && expiresAt >= now) return true;
    }
    return false;
  }

  /** Local sockets of one user. */
  countConnections(tenantId: string, userId: string): number {
    return this.byUser.get(this.userKey(tenantId, userId))?.size ?? 0;
  }

  /**
   * Adds an authenticated socket. Returns the position its live events start after; a resuming socket's
   * live events are held until `resume` has sent it what it missed.
   */
  async add(connection: Connection, resumeFrom: Cursor | null): Promise<Cursor> {
    this.credentials.add(connection);
    const ofTenant = this.tenantSockets.get(connection.tenantId);
    if (ofTenant === undefined) this.tenantSockets.set(connection.tenantId, new Set([connection]));
    else ofTenant.add(connection);
    const key = this.userKey(connection.tenantId, connection.userId);
    const sockets = this.byUser.get(key) ?? new Set();
    const isFirstSocket = sockets.size === 0;
    sockets.add(connection);
    this.byUser.set(key, sockets);
    clearTimeout(this.offlineTimers.get(key));
    this.offlineTimers.delete(key);

    const feed = await this.feedOf(connection);
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
        ttlMs: this.timings.presenceTtlMs,
      });
    }
    return start;
  }

  /** Sends a resuming socket what it missed (after its ready frame), then the live events held meanwhile. */
  resume(connection: Connection, from: Cursor, until: Cursor): Promise<void> {
    return this.catchUp(connection, from, until);
  }

  /**
   * The feed of a socket's tenant in this process, started at the present on first use (once, however many
   * ask), reading the log as that tenant: the tenant the socket authenticated in.
   */
  private feedOf(connection: Connection): Promise<TenantFeed> {
    const { tenantId } = connection;
    let start = this.feedStarts.get(tenantId);
    if (!start) {
      const tenant = tenantDb(this.feedOrm, contextOf(connection));
      const starting = currentSnapshot(this.orm).then((snapshot) => {
        const feed = new TenantFeed(tenant, { prev: snapshot, at: Date.now() }, this.log);
        // Unless every socket that asked for it left meanwhile (the next one starts its own).
        if (this.feedStarts.get(tenantId) === starting) this.feeds.set(tenantId, feed);
        return feed;
      });
      start = starting;
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

  /**
   * Whether the socket's api key is still live in the database (a look shared by the frames that arrive
   * together); a socket whose key is gone is ended. Asked before each frame that acts is carried out.
   */
  confirmKey(connection: Connection): Promise<boolean> {
    return this.credentials.confirmKey(connection);
  }

  /** Forgets a socket; idempotent (a socket that closes while it registers is removed twice). */
  remove(connection: Connection): void {
    this.credentials.remove(connection);
    this.feeds.get(connection.tenantId)?.remove(connection);
    // A tenant with no sockets left here, registering ones included, is not read any more; the next
    // socket starts a fresh feed.
    const ofTenant = this.tenantSockets.get(connection.tenantId);
    if (ofTenant?.delete(connection) === true && ofTenant.size === 0) {
      this.tenantSockets.delete(connection.tenantId);
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
        }, this.timings.offlineAfterMs).unref(),
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
        }, this.timings.typingExpiresMs).unref(),
      );
    }
  }

  /** The conversations a user is a member of; with `exceptChannels`, its direct and group ones only. */
  private async loadConversations(
    tenantId: string,
    userId: string,
    options: { exceptChannels?: boolean } = {},
  ): Promise<Set<string>> {
    return new Set(await this.services.conversations.listConversationIdsOfUser(tenantId, userId, options));
  }

  private onBusMessage(message: BusMessage): void {
    if (message.kind === 'events') {
      this.feeds.get(message.tenantId)?.wake();
      return;
    }
    if (message.kind === 'presence_renewal') {
      const expiresAt = this.presenceExpiryOf(message);
      for (const [tenantId, userId] of message.users) {
        const key = this.userKey(tenantId, userId);
        const processes = this.presence.get(key) ?? new Map<string, number>();
        const wasOnline = processes.size > 0;
        processes.set(message.processId, expiresAt);
        this.presence.set(key, processes);
        if (!wasOnline) this.announcePresence(tenantId, userId, true);
      }
      return;
    }
    if (message.kind === 'credentials') {
      // The auth cache forgets it too (app.ts); here the sockets standing on it end.
      this.credentials.apply(message.change);
      return;
    }
    if (message.kind === 'presence') {
      this.onPresence(message);
      return;
    }
    // The attachments' upload locker's (upload-locker.ts), not the hub's.
    if (message.kind === 'upload_release') return;
    // Typing, the one kind left.
    const feed = this.feeds.get(message.tenantId);
    if (feed === undefined) return;
    const frame: ServerFrame = {
      type: 'event',
      event: {
        type: message.isTyping ? 'typing.started' : 'typing.stopped',
        conversation_id: message.conversationId,
        data: { user_id: message.userId },
        ts: new Date().toISOString(),
      },
    };
    for (const connection of feed.followersOf(message.conversationId)) {
      if (connection.userId !== message.userId) connection.send(frame);
    }
  }

  private onPresence(message: Extract<BusMessage, { kind: 'presence' }>): void {
    const key = this.userKey(message.tenantId, message.userId);
    const processes = this.presence.get(key) ?? new Map<string, number>();
    const wasOnline = processes.size > 0;
    if (message.isOnline) processes.set(message.processId, this.presenceExpiryOf(message));
    else processes.delete(message.processId);
    if (processes.size > 0) this.presence.set(key, processes);
    else this.presence.delete(key);
    const isOnline = processes.size > 0;
    if (wasOnline !== isOnline) this.announcePresence(message.tenantId, message.userId, isOnline);
  }

  /**
   * When an announced presence entry expires unless renewed: after the announcing process's own TTL,
   * which it renews by (a message from a version without `ttlMs` gets this process's), from now on this
   * process's clock, so neither a reader's shorter TTL nor skewed clocks between hosts make users flap.
   */
  private presenceExpiryOf(message: { ttlMs?: number }): number {
    return Date.now() + (message.ttlMs ?? this.timings.presenceTtlMs);
  }

  /** Tells this process's sockets that share a direct or group conversation with the user. */
  private announcePresence(tenantId: string, userId: string, isOnline: boolean): void {
    const feed = this.feeds.get(tenantId);
    if (feed === undefined || feed.connections.size === 0) return;
    const now = new Date().toISOString();
    // Not through channels: a channel of n members would carry n² presence frames as they come and go
    // (every socket of a 5,000-member channel connecting meant 25 million frames).
    void this.loadConversations(tenantId, userId, { exceptChannels: true })
      .then((theirs) => {
        // Each socket hears it once, naming the first conversation it shares with the user.
        const told = new Set<Connection>();
        for (const conversationId of theirs) {
          for (const connection of feed.followersOf(conversationId)) {
            if (connection.userId === userId || told.has(connection)) continue;
            told.add(connection);
            connection.send({
              type: 'event',
              event: {
                type: 'presence.changed',
                conversation_id: conversationId,
                data: { user_id: userId, status: isOnline ? 'online' : 'offline' },
                ts: now,
              },
            });
          }
        }
      })
      .catch((error: unknown) => this.log.warn({ err: error }, 'presence fan-out failed'));
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.poll);
    clearInterval(this.renewal);
    this.credentials.close();
    for (const timer of [...this.typingTimers.values(), ...this.offlineTimers.values()]) clearTimeout(timer);
    for (const feed of this.feeds.values()) {
      for (const connection of feed.connections)
        connection.socket.close(CLOSE.goingAway, 'server shutting down');
    }
  }
}

/** The tenant context a socket acts in: its user, as the socket authenticated (see gateway.ts). */
function contextOf(connection: Connection) {
  return tenantContextOf({
    kind: 'user',
    tenantId: connection.tenantId,
    userId: connection.userId,
    keyId: connection.keyId,
    via: 'token',
  });
}
