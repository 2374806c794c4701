import net from 'node:net';

/**
 * A loopback TCP proxy in front of a server (the run's PostgreSQL), which a test can cut and restore: the
 * faithful shape of a database that goes away, without stopping anyone's database.
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
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port that forwards to `target`. */
export async function startCuttableProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let isCut = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
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
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
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
