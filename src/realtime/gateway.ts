import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Static } from 'typebox';
import { WebSocketServer } from 'ws';
import { AppError, fieldErrorsFromAjv, problemOf, type ErrorCode, type FieldError } from '../errors.ts';
import type { App } from '../http/app-types.ts';
import { bearerCredentialOf } from '../http/auth.ts';
import type { AuthService } from '../modules/auth/auth.service.ts';
import { WsQuery } from '../modules/events/events.schemas.ts';
import type { MessagesService } from '../modules/messages/messages.service.ts';
import type { ReadsService } from '../modules/reads/reads.service.ts';
import { CLOSE } from './connection.ts';
import type { ConnectionLimits } from './connection-limits.ts';
import { gatewayAjv, GatewaySocket, type GatewayShared } from './gateway-socket.ts';
import type { Hub } from './hub.ts';
import { ENDED } from './socket-credentials.ts';

/** Limits of the gateway, from configuration (docs/CONFIG.md). */
export interface GatewayLimits {
  allowedOrigins: string[];
  wsMaxConnectionsPerUser: number;
  /** Sockets one tenant may hold, over every process with Redis; no limit if absent. */
  wsMaxConnectionsPerTenant?: number;
  /** Sockets this process holds, authenticated or not; the next upgrade is answered 429. No limit if absent. */
  wsMaxConnectionsPerProcess?: number;
  wsMaxFramesPerSecond: number;
  /** How often the server pings each socket; 30 s unless a test says otherwise. */
  pingIntervalMs?: number;
  /** How long a socket may stay silent (no frame, no pong) before it is dropped; 75 s by default. */
  silenceLimitMs?: number;
}

const MAX_FRAME_BYTES = 64 * 1024;

/** Answers an upgrade request over HTTP with a problem document, and closes the connection. */
function refuseUpgrade(
  socket: Duplex,
  code: ErrorCode,
  detail: string,
  errorsOrHeaders?: FieldError[] | Record<string, string>,
): void {
  const errors = Array.isArray(errorsOrHeaders) ? errorsOrHeaders : undefined;
  const headers = Array.isArray(errorsOrHeaders) ? {} : (errorsOrHeaders ?? {});
  const problem = problemOf(code, detail, errors);
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** The upgrade URL's query as an object, or why it is refused: a parameter given twice. */
function queryOf(params: URLSearchParams): { query: Record<string, string> } | { error: FieldError } {
  const query: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.hasOwn(query, key)) {
      return { error: { path: `/querystring/${key}`, message: 'is given more than once' } };
    }
    query[key] = value;
  }
  return { query };
}

const isWsQuery = gatewayAjv.compile<Static<typeof WsQuery>>(WsQuery);

/**
 * GET /v1/ws: the real-time gateway (docs/REALTIME.md). The gateway takes the HTTP upgrade itself (`ws` in
 * noServer mode) rather than through a Fastify route: a route's request, reply and their closures stayed
 * referenced by the open socket for its whole life, about 3 KiB per idle socket. What the route did before
 * the upgrade is done here: the path, the `Origin` check and the query's schema, each refusal a problem
 * document over HTTP. A plain GET without an upgrade falls through to Fastify, which answers 404.
 */
export function registerGateway(
  app: App,
  deps: {
    hub: Hub;
    auth: AuthService;
    messages: MessagesService;
    reads: ReadsService;
    limits: GatewayLimits;
    connectionLimits: ConnectionLimits;
    /** Days the event log keeps: an older resume cursor closes the socket with 4410. */
    retentionDays: number;
  },
): void {
  const { hub, auth, messages, reads, limits, connectionLimits, retentionDays } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const sockets = new Set<GatewaySocket>();
  const shared: GatewayShared = {
    hub,
    messages,
    reads,
    maxFramesPerSecond: limits.wsMaxFramesPerSecond,
    connectionLimits,
    retentionDays,
    log: app.log,
    async authenticate(token) {
      if (token.startsWith('psk_')) throw new AppError('unauthorized', 'connect with a user token');
      const verified = await auth.verifyUserToken(token);
      await auth.ensureActiveUser(verified.principal);
      return verified;
    },
    assertStillValid: (principal) => auth.assertStillValid(principal),
  };

  // One timer for every socket's heartbeat: each is pinged once per interval, from when it connected, and
  // dropped after the silence limit without a frame or a pong.
  const pingIntervalMs = limits.pingIntervalMs ?? 30_000;
  const silenceLimitMs = limits.silenceLimitMs ?? 75_000;
  const heartbeat = setInterval(
    () => {
      const now = Date.now();
      for (const gatewaySocket of sockets) {
        // A token's expiry ends its socket here, within a tick of `exp`: no timer per socket.
        const connection = gatewaySocket.connection;
        if (connection !== null && now >= connection.expiresAtMs)
          connection.endCredentials(ENDED.tokenExpired);
        if (now - gatewaySocket.lastHeard > silenceLimitMs) {
          gatewaySocket.socket.terminate();
        } else if (now - gatewaySocket.lastPinged >= pingIntervalMs) {
          gatewaySocket.lastPinged = now;
          gatewaySocket.socket.ping();
        }
      }
    },
    Math.max(10, Math.min(1000, Math.floor(pingIntervalMs / 4))),
  );
  heartbeat.unref();

  let isClosing = false;
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws owns the socket, an error on it (a client gone mid-handshake) only destroys it.
    const destroyOnError = () => socket.destroy();
    socket.on('error', destroyOnError);
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://parley.invalid');
    } catch {
      // An absolute-form target that is no URL (`GET http://[ HTTP/1.1`): thrown here, it would end the process.
      refuseUpgrade(socket, 'validation_failed', 'the request target is not a URL');
      return;
    }
    if (url.pathname !== '/v1/ws') {
      refuseUpgrade(socket, 'not_found', `no WebSocket endpoint at ${url.pathname}`);
      return;
    }
    if (isClosing) {
      socket.destroy();
      return;
    }
    // Refused before the handshake, so a full process spends nothing on it; a load balancer may try another.
    if (sockets.size >= (limits.wsMaxConnectionsPerProcess ?? Number.POSITIVE_INFINITY)) {
      refuseUpgrade(socket, 'rate_limited', 'this server holds as many sockets as it may; retry shortly', {
        'Retry-After': '5',
      });
      return;
    }
    const origin = request.headers.origin;
    if (origin !== undefined && limits.allowedOrigins.length > 0 && !limits.allowedOrigins.includes(origin)) {
      refuseUpgrade(socket, 'forbidden', `origin ${origin} may not open a socket`);
      return;
    }
    const parsed = queryOf(url.searchParams);
    if ('error' in parsed) {
      refuseUpgrade(socket, 'validation_failed', 'invalid query string', [parsed.error]);
      return;
    }
    const query = parsed.query;
    if (!isWsQuery(query)) {
      refuseUpgrade(
        socket,
        'validation_failed',
        'invalid query string',
        fieldErrorsFromAjv('querystring', isWsQuery.errors ?? []),
      );
      return;
    }
    // A non-browser client may authenticate as over HTTP, with `Authorization: Bearer` on the upgrade. Any
    // other scheme is not Parley's (a browser sends the Basic credentials of a proxy in front) and is ignored.
    const headerToken = bearerCredentialOf(request.headers.authorization);
    if (headerToken !== undefined && query.access_token !== undefined) {
      refuseUpgrade(socket, 'validation_failed', 'one credential per socket', [
        { path: '/querystring/access_token', message: 'is given with Authorization: Bearer; send one of them' },
      ]);
      return;
    }
    const token = headerToken ?? query.access_token;
    socket.removeListener('error', destroyOnError);
    wss.handleUpgrade(request, socket, head, (ws) => {
      const gatewaySocket = new GatewaySocket(ws, socket, query.cursor, shared);
      sockets.add(gatewaySocket);
      ws.on('close', () => {
        sockets.delete(gatewaySocket);
        gatewaySocket.closed();
      });
      gatewaySocket.begin(token);
    });
  };
  app.server.on('upgrade', onUpgrade);

  // On shutdown, tell clients the server is going away (1001), so they reconnect elsewhere.
  app.addHook('preClose', (done) => {
    isClosing = true;
    clearInterval(heartbeat);
    app.server.removeListener('upgrade', onUpgrade);
    for (const gatewaySocket of sockets) gatewaySocket.socket.close(CLOSE.goingAway, 'server shutting down');
    wss.close(() => done());
  });
}
