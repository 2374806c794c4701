import net from 'node:net';
import { beforeAll } from 'vitest';
import { listenForSockets, useTestApp, type TestApp } from '../../../test/helpers/app.ts';
import { createTenant, mintUserToken, putUser, type TestTenant } from '../../../test/helpers/factories.ts';

/** A real Parley server on a loopback port, for the SDK to talk to over HTTP and WebSocket. */
export function useServer(): { t: TestApp; url: () => string } {
  const t = useTestApp();
  const state = { url: '' };
  beforeAll(async () => {
    state.url = (await listenForSockets(t)).replace(/^ws/, 'http');
  });
  return { t, url: () => state.url };
}

/** A tenant with users, and a user token for each on demand. */
export async function tenantWith(
  t: TestApp,
  ...userIds: string[]
): Promise<{ tenant: TestTenant; token: (userId: string) => Promise<string> }> {
  const tenant = await createTenant(t);
  for (const userId of userIds) await putUser(t, tenant, userId);
  return { tenant, token: (userId) => mintUserToken(t, tenant, userId) };
}

/**
 * A loopback TCP proxy in front of the server whose connections a test can drop at any moment, both ways at
 * once, the way a phone loses its network: no close frame, no FIN the client could act on in order.
 */
export interface DroppingProxy {
  url: string;
  /** Destroys every open connection now; new ones are accepted as usual. */
  dropAll(): number;
  /** Stops forwarding on every open connection without closing it (a dead network path). */
  freezeAll(): void;
  close(): Promise<void>;
}

export async function startDroppingProxy(target: string): Promise<DroppingProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    dropAll() {
      const count = pairs.size;
      for (const [client, upstream] of [...pairs]) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
      return count;
    },
    freezeAll() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves when `check` holds, polling; fails after `timeoutMs` with `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
