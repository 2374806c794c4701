import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, listenForSockets, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { createTenant, mintUserToken, putUser } from './helpers/factories.ts';
import { TestSocket } from './helpers/ws-client.ts';

// Short bounds, so a trickling client is cut off in about a second; the checks run every quarter of the
// shorter one (src/app.ts), so each bound holds to within 250 ms.
const TIMEOUTS = { headersMs: 800, requestMs: 1200, idleMs: 1000, keepAliveMs: 1000 };
let t: TestApp;
let port = 0;
let base = '';

beforeAll(async () => {
  t = await buildTestApp(await createTestDatabase(), { httpTimeouts: TIMEOUTS });
  base = await listenForSockets(t);
  port = Number(new URL(base.replace(/^ws/, 'http')).port);
});

afterAll(async () => {
  await t.app.close();
  await t.database.drop();
});

interface Trickled {
  /** What the server wrote before it closed the connection. */
  answer: string;
  /** How long after connecting the connection was closed. */
  closedAfterMs: number;
}

/**
 * Connects, writes `first`, then one more byte of `trickle` every 200 ms (always well inside the idle
 * timeout), until the server closes the connection or 10 s pass.
 */
function trickle(first: string, trickled: string): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    let index = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`still open after 10 s; got ${JSON.stringify(answer)}`));
    }, 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => undefined); // a reset is a close, too
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ answer, closedAfterMs: Date.now() - startedAt });
    });
    socket.on('connect', () => {
      socket.write(first);
      timer = setInterval(() => {
        if (socket.writable) socket.write(trickled[index++ % trickled.length] ?? 'x');
      }, 200);
    });
  });
}

describe('HTTP server timeouts', () => {
  it('closes a connection whose headers trickle in, once the headers timeout has passed', async () => {
    const { answer, closedAfterMs } = await trickle(
      'GET /healthz HTTP/1.1\r\nHost: x\r\n',
      'X-Slow: yes\r\n',
    );
    expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.headersMs);
    expect(closedAfterMs).toBeLessThan(TIMEOUTS.headersMs + 1500);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose body trickles in, once the request timeout has passed', async () => {
    const { answer, closedAfterMs } = await trickle(
      // The operator's token, so the request gets past authentication and its body is read.
      `POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminToken}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"name":"',
      'aaaaaaaaaa',
    );
    expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.requestMs);
    expect(closedAfterMs).toBeLessThan(TIMEOUTS.requestMs + 1500);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('drops a connection that goes silent mid-request, once the idle timeout has passed', async () => {
    const startedAt = Date.now();
    const { answer, closedAfterMs } = await new Promise<Trickled>((resolve) => {
      // Headers complete, then silence: only the idle timeout (1000 ms) is shorter than the request one.
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write(
          `POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminToken}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
        ),
      );
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ answer: received, closedAfterMs: Date.now() - startedAt }));
    });
    // Dropped, not answered 408: the idle timeout destroys the socket, before the request timeout could answer.
    expect(answer).toBe('');
    expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.idleMs);
    expect(closedAfterMs).toBeLessThan(TIMEOUTS.requestMs);
  });

  it('closes a kept-alive connection that sends no next request, once the keep-alive timeout has passed', async () => {
    const { answer, closedAfterMs } = await new Promise<Trickled>((resolve) => {
      const startedAt = Date.now();
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ answer: received, closedAfterMs: Date.now() - startedAt }));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUTS.keepAliveMs);
    // Node adds a second to the keep-alive timeout for the socket's own timer.
    expect(closedAfterMs).toBeLessThan(TIMEOUTS.keepAliveMs + 2500);
  });

  it('leaves an upgraded WebSocket alone: silent for longer than every timeout, it still works', async () => {
    const tenant = await createTenant(t);
    await putUser(t, tenant, 'alice');
    const socket = await TestSocket.open(
      `${base}/v1/ws?access_token=${await mintUserToken(t, tenant, 'alice')}`,
    );
    await socket.waitFor((frame) => frame.type === 'ready');
    // Past the headers, request, idle and keep-alive timeouts, with no traffic at all.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(socket.closeCode).toBeNull();
    socket.send({ type: 'ping', ref: 'still-there' });
    await socket.waitFor((frame) => frame.type === 'pong' && frame.ref === 'still-there');
    await socket.close();
  });
});
