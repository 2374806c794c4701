import pg from 'pg';

/**
 * node-postgres's pool, made safe for a database that goes away under it:
 *
 * - A connection that ends while checked out emits `error` on its client, which the pool listens to only
 *   while the client is idle; unheard, that error would end the process. Every client gets a listener
 *   (`onError`); the query it was running fails on its own and is answered 503 (src/errors.ts).
 * - Drizzle's `transaction()` releases its client only if `BEGIN` succeeded: a `BEGIN` sent on a
 *   connection that had silently died would keep that client checked out forever, and after `max` of
 *   those every request would wait for a connection that never comes. A client checked out with
 *   `connect()` is therefore released (and dropped from the pool) as soon as its connection ends, and a
 *   later release of it does nothing.
 */
export class ResilientPool extends pg.Pool {
  constructor(config: pg.PoolConfig, onError: (error: Error) => void) {
    super(config);
    this.on('error', onError);
    this.on('connect', (client) => client.on('error', onError));
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (
      error: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  override connect(
    callback?: (
      error: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): Promise<pg.PoolClient> | void {
    // The callback form is the pool's own `query()`, which releases its client on every path.
    if (callback !== undefined) return super.connect(callback);
    return super.connect().then((client) => {
      const release = client.release.bind(client);
      let isReleased = false;
      const releaseOnce = (error?: Error | boolean) => {
        if (isReleased) return;
        isReleased = true;
        client.off('end', onEnd);
        release(error);
      };
      const onEnd = () => releaseOnce(true);
      client.once('end', onEnd);
      client.release = releaseOnce;
      return client;
    });
  }
}
