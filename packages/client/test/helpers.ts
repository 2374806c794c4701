import { beforeAll } from 'vitest';
import { listenForSockets, useTestApp, type TestApp } from '../../../test/helpers/app.ts';
import { startCuttableProxy, type CuttableProxy } from '../../../test/helpers/cuttable-proxy.ts';
import { createTenantWithUsers, mintUserToken, type TestTenant } from '../../../test/helpers/factories.ts';

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
  const tenant = await createTenantWithUsers(t, ...userIds);
  return { tenant, token: (userId) => mintUserToken(t, tenant, userId) };
}

/** A proxy in front of the server, whose connections a test drops or silences; its http:// address. */
export async function startProxyFor(serverUrl: string): Promise<{ url: string; proxy: CuttableProxy }> {
  const { hostname, port } = new URL(serverUrl);
  const proxy = await startCuttableProxy({ host: hostname, port: Number(port) });
  return { url: `http://127.0.0.1:${proxy.port}`, proxy };
}
