import type { FastifyBaseLogger } from 'fastify';
import type { TenantDb } from '../db/tenant-scope.ts';
import { readEventWindow } from '../modules/events/events.repository.ts';
import type { LoggedEvent, StoredEvent } from '../modules/events/events.schemas.ts';
import { toEventFrame } from '../modules/sync/sync.service.ts';
import type { Connection, EncodedEvent } from './connection.ts';
import { encodeTextFrame } from './frames.ts';
import { addTo, removeFrom } from './keyed-sets.ts';
import type { Cursor } from '../modules/events/events.cursor.ts';

/** Events read from the log per query. */
export const WINDOW_PAGE = 500;

/**
 * Reads one tenant's event log for this process and hands each event to the local sockets that receive
 * it. Its position is a snapshot; each read covers what committed since, so nothing is skipped however
 * late it commits. Registrations happen between reads, so a socket's first live event follows its start.
 */
export class TenantFeed {
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
  /**
   * The sockets following each conversation, and each user's sockets: an event goes to the sockets it
   * concerns without a look at the tenant's others, so delivering one costs the same with 10 or 100,000
   * sockets of the tenant on this process.
   */
  private readonly followers = new Map<string, Set<Connection>>();
  private readonly byUser = new Map<string, Set<Connection>>();
  /** Ids of the events skipped lately, so each is logged once. */
  private readonly skipped = new Set<number>();

  readonly tenantId: string;

  /** `tenant` is the tenant read, through the connections that serve delivery (see `Database.deliveryOrm`). */
  constructor(
    private readonly tenant: TenantDb,
    start: Cursor,
    private readonly log: FastifyBaseLogger,
  ) {
    this.tenantId = tenant.tenantId;
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

  /** Stops delivering to a socket. */
  remove(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    removeFrom(this.byUser, connection.userId, connection);
    for (const conversationId of connection.conversations) {
      removeFrom(this.followers, conversationId, connection);
    }
  }

  /** The local sockets following a conversation (its members' sockets); do not modify. */
  followersOf(conversationId: string): ReadonlySet<Connection> {
    return this.followers.get(conversationId) ?? NONE;
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
            this.add(connection);
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
    const at = Date.now();
    let now: string | undefined;
    let afterId = 0;
    for (;;) {
      // The first page fixes the window's end (`now`); further pages of a large window keep to it.
      const page = await readEventWindow(this.tenant, { prev, now, afterId, limit: WINDOW_PAGE });
      now = page.now;
      const window = { prev, now, at: this.position.at };
      for (const event of page.events) this.deliverOrSkip(event, window);
      const last = page.events.at(-1);
      if (!last || page.events.length < WINDOW_PAGE) break;
      afterId = last.id;
    }
    this.position = { prev: now, at };
  }

  /**
   * Delivers one event, or skips it if it cannot be routed (a row another version of Parley wrote without
   * the fields routing needs, or a malformed one): it is logged once and left to replays (`?cursor=`,
   * `/v1/sync`), which carry it as logged. One bad event must not stop the tenant's feed: the position
   * still moves past it, so the events after it keep flowing.
   */
  private deliverOrSkip(event: StoredEvent, window: { prev: string; now: string; at: number }): void {
    const problem = routingProblemOf(event);
    if (problem === null) {
      try {
        this.dispatch(event, toEventFrame(event, window));
        return;
      } catch (error) {
        this.logSkipped(event, error instanceof Error ? error.message : String(error));
        return;
      }
    }
    this.logSkipped(event, problem);
  }

  /** Logs a skipped event once per id (a window re-read after a failed page meets it again), no content. */
  private logSkipped(event: StoredEvent, problem: string): void {
    if (this.skipped.has(event.id)) return;
    this.skipped.add(event.id);
    if (this.skipped.size > SKIPPED_REMEMBERED) {
      const [oldest] = this.skipped;
      if (oldest !== undefined) this.skipped.delete(oldest);
    }
    this.log.warn(
      { tenantId: this.tenantId, eventId: event.id, eventType: event.type, problem },
      'an event of the log cannot be routed; skipped for live delivery (replays still carry it)',
    );
  }

  private add(connection: Connection): void {
    this.connections.add(connection);
    addTo(this.byUser, connection.userId, connection);
    for (const conversationId of connection.conversations) {
      addTo(this.followers, conversationId, connection);
    }
  }

  /**
   * Applies what an event changes about who follows its conversation, before it is delivered, so a newly
   * added member receives the event that adds it and a removed one only if it is the event's subject.
   */
  private applyMembership(event: StoredEvent): void {
    const conversationId = event.conversationId;
    const joining =
      event.type === 'member.added'
        ? [event.data.user_id]
        : event.type === 'conversation.created'
          ? event.data.member_ids
          : [];
    for (const userId of joining) {
      for (const connection of this.byUser.get(userId) ?? NONE) {
        connection.conversations.add(conversationId);
        addTo(this.followers, conversationId, connection);
      }
    }
    if (event.type === 'member.removed') {
      for (const connection of this.byUser.get(event.data.user_id) ?? NONE) {
        connection.conversations.delete(conversationId);
        removeFrom(this.followers, conversationId, connection);
      }
    }
  }

  private dispatch(event: StoredEvent, frame: LoggedEvent): void {
    let payload: Buffer | undefined;
    let framed: Buffer | undefined;
    const encode: EncodedEvent = {
      payload: () => (payload ??= Buffer.from(JSON.stringify({ type: 'event', event: frame }))),
      frame: () => (framed ??= encodeTextFrame(encode.payload())),
    };
    this.applyMembership(event);
    // A private event (a user's own read state) goes to its subject's sockets only; any other to the
    // conversation's followers and to its subject's sockets (a member just removed learns of it).
    const followers = event.isPrivate ? NONE : this.followersOf(event.conversationId);
    for (const connection of followers) connection.deliver(event, frame, encode);
    if (event.subjectUserId === null) return;
    for (const connection of this.byUser.get(event.subjectUserId) ?? NONE) {
      if (!followers.has(connection)) connection.deliver(event, frame, encode);
    }
  }
}

const NONE: ReadonlySet<Connection> = new Set();

/** How many skipped event ids a feed remembers, to log each once. */
const SKIPPED_REMEMBERED = 1000;

/**
 * What keeps an event from being routed, or null: the fields live delivery reads (the membership an event
 * changes, who it is about) checked as they are, since the log may hold rows another version wrote. Only
 * these, not the whole contract: the rest of `data` is passed through untouched, as replays pass it.
 */
function routingProblemOf(event: { [K in keyof StoredEvent]: unknown }): string | null {
  const data = event.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'data is not an object';
  if (typeof event.conversationId !== 'string') return 'no conversation id';
  if (event.subjectUserId !== null && typeof event.subjectUserId !== 'string')
    return 'subject_user_id is not a string';
  if (typeof event.isPrivate !== 'boolean') return 'is_private is not a boolean';
  if (!(event.createdAt instanceof Date) || Number.isNaN(event.createdAt.getTime()))
    return 'created_at is not a time';
  if (event.type === 'member.added' || event.type === 'member.removed') {
    const userId: unknown = Reflect.get(data, 'user_id');
    if (typeof userId !== 'string') return 'data.user_id is not a string';
  }
  if (event.type === 'conversation.created') {
    const memberIds: unknown = Reflect.get(data, 'member_ids');
    if (!Array.isArray(memberIds) || !memberIds.every((id) => typeof id === 'string'))
      return 'data.member_ids is not a list of user ids';
  }
  return null;
}
