import type { FastifyBaseLogger } from 'fastify';
import type { Orm } from '../db/client.ts';
import { readEventWindow, type StoredEvent } from '../modules/events/events.repository.ts';
import { toEventFrame, type EventFrame } from '../modules/sync/sync.service.ts';
import type { Connection, EncodedEvent } from './connection.ts';
import { encodeTextFrame } from './frames.ts';
import type { Cursor } from './cursor.ts';

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
    const at = Date.now();
    let now: string | undefined;
    let afterId = 0;
    for (;;) {
      // The first page fixes the window's end (`now`); further pages of a large window keep to it.
      const page = await readEventWindow(this.orm, this.tenantId, { prev, now, afterId, limit: WINDOW_PAGE });
      now = page.now;
      const window = { prev, now, at: this.position.at };
      for (const event of page.events) this.dispatch(event, toEventFrame(event, window));
      const last = page.events.at(-1);
      if (!last || page.events.length < WINDOW_PAGE) break;
      afterId = last.id;
    }
    this.position = { prev: now, at };
  }

  private dispatch(event: StoredEvent, frame: EventFrame): void {
    let payload: Buffer | undefined;
    let framed: Buffer | undefined;
    const encode: EncodedEvent = {
      payload: () => (payload ??= Buffer.from(JSON.stringify({ type: 'event', event: frame }))),
      frame: () => (framed ??= encodeTextFrame(encode.payload())),
    };
    for (const connection of this.connections) {
      // Membership changes first, so a newly added member receives the event that adds it.
      connection.follow(event);
      if (connection.receives(event)) connection.deliver(event, frame, encode);
    }
  }
}
