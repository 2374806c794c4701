// The outbound HTTP client (src/outbound/): which URLs are refused when stored, that the address is checked
// again where the socket opens, and the bounds on a request (no redirects, one deadline, a capped body).
// Every server here listens on 127.0.0.1; no test leaves the machine, and host names resolve through an
// injected lookup, never through DNS.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertOutboundUrl,
  isAddressAllowed,
  OutboundUrlError,
  type OutboundLookup,
  type OutboundPolicy,
} from '../src/outbound/outbound-url.ts';
import { closeOutboundAgents, OutboundError, sendOutbound } from '../src/outbound/send-outbound.ts';
import { makeTestCa } from './helpers/test-ca.ts';

const DENY: OutboundPolicy = { allowPrivateNetworks: false };
const ALLOW: OutboundPolicy = { allowPrivateNetworks: true };

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A loopback server that records every request it gets and answers with `handle`. */
async function startServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('ok'),
): Promise<{ url: string; port: number; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      handle(req, res);
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, port, received, server };
}

const servers: Server[] = [];
afterAll(async () => {
  await closeOutboundAgents();
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

async function refusalOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

/** A lookup that answers each name from a table, counting calls; unknown names do not resolve. */
function tableLookup(table: Record<string, string[][]>): OutboundLookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = (hostname: string) => {
    calls.push(hostname);
    const answers = table[hostname];
    const answer = answers?.[Math.min(calls.filter((name) => name === hostname).length, answers.length) - 1];
    if (answer === undefined)
      return Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    return Promise.resolve(answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return Object.assign(lookup, { calls });
}

describe('assertOutboundUrl, when a URL is stored', () => {
  it.each([
    ['http://127.0.0.1/hook', 'address'],
    ['http://localhost/hook', 'address'],
    ['http://LOCALHOST./hook', 'address'],
    ['http://api.localhost/hook', 'address'],
    ['http://[::1]/hook', 'address'],
    ['http://[::ffff:127.0.0.1]/hook', 'address'],
    ['http://[::]/hook', 'address'],
    ['http://0.0.0.0/hook', 'address'],
    ['http://169.254.169.254/latest/meta-data/', 'address'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'address'],
    ['http://10.0.0.1/hook', 'address'],
    ['http://192.168.1.1/hook', 'address'],
    ['http://100.64.0.1/hook', 'address'],
    ['http://224.0.0.1/hook', 'address'],
    ['http://[fe80::1]/hook', 'address'],
    // The URL parser turns these into 127.0.0.1 before any check sees them.
    ['http://2130706433/', 'address'],
    ['http://0x7f.1/', 'address'],
    ['http://017700000001/', 'address'],
    // NAT64 and 6to4 addresses are judged by the IPv4 address inside them.
    ['http://[64:ff9b::a00:1]/', 'address'],
    ['http://[2002:7f00:1::]/', 'address'],
    // IPv4-compatible (deprecated) ::127.0.0.1.
    ['http://[::7f00:1]/', 'address'],
    ['http://[fe80::1%25eth0]/', 'invalid'],
    ['ftp://example.com/hook', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['not a url', 'invalid'],
    ['https://user:pass@example.com/hook', 'credentials'],
    ['https://user@example.com/hook', 'credentials'],
    ['http://93.184.215.14:22/', 'port'],
    ['http://93.184.215.14:0/', 'port'],
  ])('refuses %s (%s)', async (url, reason) => {
    const error = await refusalOf(assertOutboundUrl(url, { ...DENY, lookup: tableLookup({}) }));
    expect(error).toBeInstanceOf(OutboundUrlError);
    expect((error as OutboundUrlError).reason).toBe(reason);
    expect((error as OutboundUrlError).message).not.toContain('127.0.0.1');
  });

  it('accepts a public address literal, with the default and an unprivileged port', async () => {
    expect((await assertOutboundUrl('https://93.184.215.14/hook', DENY)).href).toBe(
      'https://93.184.215.14/hook',
    );
    expect((await assertOutboundUrl('http://[2606:4700::1111]:8443/x', DENY)).port).toBe('8443');
    expect((await assertOutboundUrl('http://[64:ff9b::808:808]/', DENY)).hostname).toBe('[64:ff9b::808:808]');
  });

  it('resolves a host name and refuses it if any one of its addresses is not public', async () => {
    const lookup = tableLookup({
      'public.test': [['93.184.215.14', '2606:4700::1111']],
      'mixed.test': [['93.184.215.14', '10.0.0.7']],
      'mapped.test': [['::ffff:169.254.169.254']],
    });
    const policy = { ...DENY, lookup };
    expect((await assertOutboundUrl('https://public.test/hook', policy)).hostname).toBe('public.test');
    const mixed = await refusalOf(assertOutboundUrl('https://mixed.test/hook', policy));
    expect((mixed as OutboundUrlError).reason).toBe('address');
    const mapped = await refusalOf(assertOutboundUrl('https://mapped.test/hook', policy));
    expect((mapped as OutboundUrlError).reason).toBe('address');
    const missing = await refusalOf(assertOutboundUrl('https://missing.test/hook', policy));
    expect((missing as OutboundUrlError).reason).toBe('unresolvable');
    expect(lookup.calls).toEqual(['public.test', 'mixed.test', 'mapped.test', 'missing.test']);
  });

  it('with private networks allowed, accepts loopback and private addresses but never cloud metadata', async () => {
    expect((await assertOutboundUrl('http://127.0.0.1:8080/hook', ALLOW)).port).toBe('8080');
    expect((await assertOutboundUrl('http://10.0.0.1/hook', ALLOW)).hostname).toBe('10.0.0.1');
    expect(
      (
        await assertOutboundUrl('http://localhost:3000/hook', {
          ...ALLOW,
          lookup: tableLookup({ localhost: [['127.0.0.1']] }),
        })
      ).hostname,
    ).toBe('localhost');
    for (const url of [
      'http://169.254.169.254/',
      'http://[fd00:ec2::254]/',
      'http://100.100.100.200/',
      'http://224.0.0.1/',
    ]) {
      const error = await refusalOf(assertOutboundUrl(url, ALLOW));
      expect((error as OutboundUrlError).reason, url).toBe('address');
    }
    expect(isAddressAllowed('::ffff:10.0.0.1', ALLOW)).toBe(true);
    expect(isAddressAllowed('::ffff:10.0.0.1', DENY)).toBe(false);
  });
});

describe('sendOutbound', () => {
  it('refuses a loopback server at connect time without private networks, and never reaches it', async () => {
    const target = await startServer();
    for (const url of [target.url, `http://[::ffff:127.0.0.1]:${target.port}/`]) {
      const error = await refusalOf(sendOutbound({ url, headers: {}, body: 'x' }, DENY));
      expect(error).toBeInstanceOf(OutboundError);
      expect((error as OutboundError).kind).toBe('refused_address');
    }
    const named = await refusalOf(
      sendOutbound(
        { url: `http://hooks.test:${target.port}/`, headers: {}, body: 'x' },
        { ...DENY, lookup: tableLookup({ 'hooks.test': [['127.0.0.1']] }) },
      ),
    );
    expect((named as OutboundError).kind).toBe('refused_address');
    expect(target.received).toEqual([]);
  });

  it('refuses at connect time a name that resolved to a public address when it was stored (DNS rebinding)', async () => {
    const target = await startServer();
    const lookup = tableLookup({ 'rebind.test': [['93.184.215.14'], ['93.184.215.14', '127.0.0.1']] });
    const policy = { ...DENY, lookup };
    const url = `http://rebind.test:${target.port}/hook`;
    expect((await assertOutboundUrl(url, policy)).hostname).toBe('rebind.test');
    const error = await refusalOf(sendOutbound({ url, headers: {}, body: 'x', timeoutMs: 2_000 }, policy));
    expect((error as OutboundError).kind).toBe('refused_address');
    expect(lookup.calls).toEqual(['rebind.test', 'rebind.test']);
    expect(target.received).toEqual([]);
  });

  it('connects to the address its lookup approved: a name resolving to loopback reaches it when allowed', async () => {
    const target = await startServer();
    const lookup = tableLookup({ 'hooks.test': [['127.0.0.1']] });
    const response = await sendOutbound(
      { url: `http://hooks.test:${target.port}/in`, headers: {}, body: 'named' },
      { ...ALLOW, lookup },
    );
    expect(response.status).toBe(200);
    expect(target.received).toMatchObject([
      { url: '/in', body: 'named', headers: { host: `hooks.test:${target.port}` } },
    ]);
    expect(lookup.calls).toEqual(['hooks.test']);
  });

  it('posts headers and body intact and returns status, headers and body', async () => {
    const target = await startServer((_req, res) => {
      res.writeHead(202, { 'content-type': 'text/plain', 'x-reply': 'yes' });
      res.end('accepted ✓');
    });
    const body = JSON.stringify({ type: 'message.created', text: 'héllo ✓' });
    const response = await sendOutbound(
      {
        url: `${target.url}hooks/1?x=1`,
        headers: { 'content-type': 'application/json', 'x-parley-signature': 'v1=abc' },
        body,
      },
      ALLOW,
    );
    expect(response).toMatchObject({ status: 202, body: 'accepted ✓', truncated: false });
    expect(response.headers['x-reply']).toBe('yes');
    expect(target.received).toHaveLength(1);
    expect(target.received[0]).toMatchObject({
      method: 'POST',
      url: '/hooks/1?x=1',
      body,
      headers: { 'content-type': 'application/json', 'x-parley-signature': 'v1=abc' },
    });
    const bytes = new TextEncoder().encode('raw bytes');
    const put = await sendOutbound({ url: target.url, method: 'PUT', headers: {}, body: bytes }, ALLOW);
    expect(put.status).toBe(202);
    expect(target.received[1]).toMatchObject({ method: 'PUT', body: 'raw bytes' });
  });

  it('returns a 302 as is and does not follow its Location', async () => {
    const elsewhere = await startServer();
    const target = await startServer((_req, res) => {
      res.writeHead(302, { location: `${elsewhere.url}stolen` });
      res.end();
    });
    const response = await sendOutbound({ url: target.url, headers: {}, body: 'x' }, ALLOW);
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(`${elsewhere.url}stolen`);
    expect(target.received).toHaveLength(1);
    expect(elsewhere.received).toEqual([]);
  });

  it('gives up with kind timeout when the server never answers', async () => {
    const target = await startServer(() => {
      // Never answers.
    });
    const started = performance.now();
    const error = await refusalOf(
      sendOutbound({ url: target.url, headers: {}, body: 'x', timeoutMs: 300 }, ALLOW),
    );
    const elapsed = performance.now() - started;
    expect((error as OutboundError).kind).toBe('timeout');
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1_500);
    expect(target.received).toHaveLength(1);
  });

  it('counts the body in the deadline: a server that sends headers then trickles times out too', async () => {
    const target = await startServer((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const started = performance.now();
    const error = await refusalOf(
      sendOutbound({ url: target.url, headers: {}, body: 'x', timeoutMs: 300 }, ALLOW),
    );
    expect((error as OutboundError).kind).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('reads a huge body only up to maxBodyBytes, then closes the connection', async () => {
    let written = 0;
    let closed!: Promise<unknown>;
    const target = await startServer((_req, res) => {
      closed = once(res, 'close');
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(16 * 1024, 'a');
      const pump = (): void => {
        // Endless, as fast as the socket takes it.
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const response = await sendOutbound(
      { url: target.url, headers: {}, body: 'x', maxBodyBytes: 1000 },
      ALLOW,
    );
    expect(response.status).toBe(200);
    expect(response.body).toBe('a'.repeat(1000));
    expect(response.truncated).toBe(true);
    await closed;
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a stored URL that no longer passes the URL checks, before any connection', async () => {
    const target = await startServer();
    const error = await refusalOf(
      sendOutbound({ url: target.url.replace('http://', 'http://u:p@'), headers: {}, body: 'x' }, ALLOW),
    );
    expect((error as OutboundError).kind).toBe('refused_url');
    expect(target.received).toEqual([]);
  });

  it('reports a refused connection as kind connect', async () => {
    const target = await startServer();
    const { port } = target;
    await new Promise((resolve) => target.server.close(resolve));
    const error = await refusalOf(
      sendOutbound({ url: `http://127.0.0.1:${port}/`, headers: {}, body: 'x' }, ALLOW),
    );
    expect((error as OutboundError).kind).toBe('connect');
  });

  it('reports a certificate from a CA the process does not trust as kind tls, and sends nothing', async () => {
    // A server certificate for 127.0.0.1 issued by a throwaway CA, sent without its chain: the client
    // cannot verify it (OpenSSL's UNABLE_TO_VERIFY_LEAF_SIGNATURE, a code that names no CERT, SSL or TLS).
    const ca = makeTestCa();
    const received: string[] = [];
    const server = createHttpsServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      received.push(req.url ?? '');
      res.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const error = await refusalOf(
        sendOutbound({ url: `https://127.0.0.1:${port}/`, headers: {}, body: 'x' }, ALLOW),
      );
      expect(error).toBeInstanceOf(OutboundError);
      expect((error as OutboundError).kind).toBe('tls');
      expect(received).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('never reuses a connection opened under a policy that allowed private networks for one that does not', async () => {
    const target = await startServer();
    expect((await sendOutbound({ url: target.url, headers: {}, body: 'first' }, ALLOW)).status).toBe(200);
    const error = await refusalOf(sendOutbound({ url: target.url, headers: {}, body: 'second' }, DENY));
    expect((error as OutboundError).kind).toBe('refused_address');
    expect(target.received.map((request) => request.body)).toEqual(['first']);
  });

  it("reports the caller's abort as kind aborted, not as a timeout", async () => {
    const target = await startServer(() => {
      // Never answers.
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await refusalOf(
      sendOutbound(
        { url: target.url, headers: {}, body: 'x', signal: controller.signal, timeoutMs: 5_000 },
        ALLOW,
      ),
    );
    expect((error as OutboundError).kind).toBe('aborted');
  });
});
