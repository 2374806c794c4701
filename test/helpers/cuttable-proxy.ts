import net from 'node:net';

/**
 * A loopback TCP proxy in front of a server (the run's PostgreSQL, or a Parley server), which a test can cut
 * and restore: the faithful shape of a database that goes away, without stopping anyone's database; or whose
 * open connections it can drop or silence while new ones pass, the way a phone loses its network.
 */
export interface CuttableProxy {
  /** The port clients connect to. */
  port: number;
  /**
   * From now on: new connections are refused (the port is closed), and each open one is reset the moment
   * its client writes, so a query sent on a pooled connection dies in flight ("Connection terminated").
   */
  cut(): Promise<void>;
  /** Listens again on the same port and forwards new connections. */
  restore(): Promise<void>;
  /** Resets every open connection now, both ways; new ones are accepted as usual. Returns how many. */
  dropAll(): number;
  /** Stops forwarding on every open connection without closing it (a dead network path). */
  freezeAll(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port that forwards to `target`. */
export async function startCuttableProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; frozen: boolean }>();
  let isCut = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream, frozen: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk: Buffer) => {
      if (isCut) end();
      else if (!pair.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen) client.write(chunk);
    });
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
  const port = await listen(0);
  return {
    port,
    cut() {
      isCut = true;
      // close() waits for open connections to end; they end when their client writes, or at close().
      server.close();
      return Promise.resolve();
    },
    async restore() {
      isCut = false;
      await listen(port);
    },
    dropAll() {
      const count = pairs.size;
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
      return count;
    },
    freezeAll() {
      for (const pair of pairs) pair.frozen = true;
    },
    async close() {
      isCut = true;
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await stopListening();
    },
  };
}
