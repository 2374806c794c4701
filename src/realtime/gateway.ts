import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { RawData, WebSocket } from 'ws';
import { tenantContextOf, type Principal } from '../context.ts';
import { AppError, sendProblem } from '../errors.ts';
import type { App } from '../http/app-types.ts';
import type { AuthService } from '../modules/auth/auth.service.ts';
import { SeqOrZero } from '../modules/messages/messages.schemas.ts';
import type { MessagesService } from '../modules/messages/messages.service.ts';
import type { ReadsService } from '../modules/reads/reads.service.ts';
import { assertCursorRetained, decodeCursor, encodeCursor } from './cursor.ts';
import { CLOSE, Connection } from './connection.ts';
import type { Hub } from './hub.ts';

/** Limits of the gateway, from configuration (docs/CONFIG.md). */
export interface GatewayLimits {
  allowedOrigins: string[];
  wsMaxConnectionsPerUser: number;
  wsMaxFramesPerSecond: number;
  /** How often the server pings each socket; 30 s unless a test says otherwise. */
  pingIntervalMs?: number;
  /** How long a socket may stay silent (no frame, no pong) before it is dropped; 75 s by default. */
  silenceLimitMs?: number;
}

const MAX_FRAME_BYTES = 64 * 1024;
/** The close code for a refused connection, by the error that refused it. */
const CLOSE_CODE_OF: Partial<Record<string, number>> = {
  unauthorized: CLOSE.unauthorized,
  forbidden: CLOSE.forbidden,
  cursor_expired: CLOSE.cursorExpired,
  validation_failed: CLOSE.badRequest,
};
const AUTH_TIMEOUT_MS = 5000;

const Ref = Type.Optional(Type.String({ maxLength: 128 }));
const ConversationId = Type.String({ format: 'uuid' });
const ClientFrame = Type.Union([
  Type.Object(
    { type: Type.Literal('auth'), token: Type.String({ maxLength: 4096 }), ref: Ref },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('send'),
      ref: Ref,
      conversation_id: ConversationId,
      text: Type.String({ minLength: 1, maxLength: 10_000, pattern: '^[^\\u0000]*$' }),
      client_msg_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      thread_root_id: Type.Optional(Type.String({ format: 'uuid' })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('read'),
      ref: Ref,
      conversation_id: ConversationId,
      seq: Type.Optional(SeqOrZero),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Union([Type.Literal('typing.start'), Type.Literal('typing.stop')]),
      ref: Ref,
      conversation_id: ConversationId,
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('ping'), ref: Ref }, { additionalProperties: false }),
]);
type ClientFrame = Static<typeof ClientFrame>;

const ajv = new Ajv({ allErrors: false, strict: false });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
const isClientFrame = ajv.compile<ClientFrame>(ClientFrame);

const WsQuery = Type.Object(
  {
    access_token: Type.Optional(Type.String({ maxLength: 4096 })),
    cursor: Type.Optional(
      Type.String({ maxLength: 8192, description: 'Resume: receive what followed this cursor first' }),
    ),
  },
  { additionalProperties: false },
);

/** The text of a frame, however ws chunked it. */
export function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(new Uint8Array(data)).toString('utf8');
}

/** A token bucket: `rate` frames a second sustained, bursts of twice that. */
function createRateLimit(rate: number) {
  let tokens = rate * 2;
  let last = Date.now();
  return () => {
    const now = Date.now();
    tokens = Math.min(rate * 2, tokens + ((now - last) / 1000) * rate);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/** GET /v1/ws: the real-time gateway (docs/REALTIME.md). */
export async function registerGateway(
  app: App,
  deps: {
    hub: Hub;
    auth: AuthService;
    messages: MessagesService;
    reads: ReadsService;
    limits: GatewayLimits;
    /** Days the event log keeps: an older resume cursor closes the socket with 4410. */
    retentionDays: number;
  },
): Promise<void> {
  const { hub, auth, messages, reads, limits, retentionDays } = deps;
  await app.register(websocket, {
    options: { maxPayload: MAX_FRAME_BYTES },
    // On shutdown, tell clients the server is going away (1001), so they reconnect elsewhere.
    preClose: function (
      this: { websocketServer: { clients: Set<WebSocket>; close(done: () => void): void } },
      done,
    ) {
      for (const client of this.websocketServer.clients)
        client.close(CLOSE.goingAway, 'server shutting down');
      this.websocketServer.close(done);
    },
  });

  const authenticate = async (token: string): Promise<Extract<Principal, { kind: 'user' }>> => {
    const principal = await auth.authenticateTenantCredential(token, undefined);
    if (principal.kind !== 'user') throw new AppError('unauthorized', 'connect with a user token');
    await auth.ensureActiveUser(principal);
    return principal;
  };

  app.get(
    '/v1/ws',
    {
      websocket: true,
      config: { auth: 'none' },
      schema: {
        tags: ['real time'],
        summary: 'WebSocket gateway (see docs/REALTIME.md)',
        querystring: WsQuery,
      },
      preValidation: async (request: FastifyRequest, reply) => {
        const origin = request.headers.origin;
        if (
          origin !== undefined &&
          limits.allowedOrigins.length > 0 &&
          !limits.allowedOrigins.includes(origin)
        ) {
          await sendProblem(reply, 'forbidden', `origin ${origin} may not open a socket`);
        }
      },
    },
    (socket: WebSocket, request) => {
      // What the socket's closures need of the upgrade request, taken now: closures that used `request`
      // itself kept it (and its IncomingMessage, headers and reply) alive for the socket's whole life.
      const query = request.query;
      const log = request.log;
      const transport = request.raw.socket;
      let connection: Connection | null = null;
      let lastHeard = Date.now();
      const isWithinRate = createRateLimit(limits.wsMaxFramesPerSecond);
      // A function, not a narrowed check: the state changes across awaits.
      const isOpen = () => socket.readyState === socket.OPEN;
      const sendFrame = (frame: object) => {
        if (isOpen()) socket.send(JSON.stringify(frame));
      };
      const sendError = (error: unknown, ref: string | undefined) => {
        if (error instanceof AppError) {
          sendFrame({
            type: 'error',
            ...(ref === undefined ? {} : { ref }),
            code: error.code,
            detail: error.message,
          });
          return;
        }
        log.error({ err: error }, 'socket frame failed');
        sendFrame({
          type: 'error',
          ...(ref === undefined ? {} : { ref }),
          code: 'internal',
          detail: 'internal error',
        });
      };

      // One authentication per socket: a second token (query and frame, or two frames) is refused.
      let isAuthenticating = false;
      const start = async (token: string) => {
        if (isAuthenticating) throw new AppError('conflict', 'this socket is already authenticated');
        isAuthenticating = true;
        try {
          const principal = await authenticate(token);
          if (hub.countConnections(principal.tenantId, principal.userId) >= limits.wsMaxConnectionsPerUser) {
            socket.close(CLOSE.tooManyConnections, 'too many connections for this user');
            return;
          }
          const resumeFrom = query.cursor === undefined ? null : decodeCursor(query.cursor);
          if (resumeFrom !== null) assertCursorRetained(resumeFrom, retentionDays);
          const joined = new Connection(
            principal.tenantId,
            principal.userId,
            socket,
            hub.timings.maxBufferedBytes,
            transport,
          );
          if (!isOpen()) return;
          connection = joined;
          const position = await hub.add(joined, resumeFrom);
          // Ready first, then what a resuming socket missed, then live events: cursors only move forward.
          sendFrame({
            type: 'ready',
            user_id: principal.userId,
            connection_id: joined.id,
            server_time: new Date().toISOString(),
            cursor: query.cursor ?? encodeCursor(position),
          });
          if (resumeFrom !== null) await hub.resume(joined, resumeFrom, position);
          if (!isOpen()) hub.remove(joined);
        } catch (error) {
          const code = error instanceof AppError ? error.code : 'internal';
          if (code !== 'unauthorized') sendError(error, undefined);
          socket.close(
            CLOSE_CODE_OF[code] ?? CLOSE.internal,
            error instanceof AppError ? error.message.slice(0, 120) : 'internal error',
          );
        }
      };

      const authTimer = setTimeout(() => {
        if (connection === null) socket.close(CLOSE.unauthorized, 'authenticate within 5 seconds');
      }, AUTH_TIMEOUT_MS);
      if (query.access_token !== undefined) {
        clearTimeout(authTimer);
        void start(query.access_token);
      }

      const heartbeat = setInterval(() => {
        if (Date.now() - lastHeard > (limits.silenceLimitMs ?? 75_000)) socket.terminate();
        else socket.ping();
      }, limits.pingIntervalMs ?? 30_000);
      socket.on('pong', () => (lastHeard = Date.now()));

      socket.on('message', (data: RawData, isBinary: boolean) => {
        lastHeard = Date.now();
        let frame: unknown;
        try {
          if (isBinary) throw new Error('binary');
          frame = JSON.parse(textOf(data));
        } catch {
          socket.close(1007, 'frames are JSON text');
          return;
        }
        // Any JSON may arrive (null, a number, an array): read `ref` only from an object.
        const ref =
          typeof frame === 'object' && frame !== null && typeof (frame as { ref?: unknown }).ref === 'string'
            ? (frame as { ref: string }).ref
            : undefined;
        if (!isRateOk()) return;
        if (!isClientFrame(frame)) {
          sendError(new AppError('validation_failed', ajv.errorsText(isClientFrame.errors)), ref);
          return;
        }
        void handleFrame(frame).catch((error: unknown) => sendError(error, frame.ref));

        function isRateOk(): boolean {
          if (isWithinRate()) return true;
          sendError(
            new AppError('rate_limited', `at most ${limits.wsMaxFramesPerSecond} frames a second`),
            ref,
          );
          return false;
        }
      });

      const handleFrame = async (frame: ClientFrame) => {
        if (frame.type === 'auth') {
          clearTimeout(authTimer);
          await start(frame.token);
          return;
        }
        if (frame.type === 'ping') {
          sendFrame({ type: 'pong', ...(frame.ref === undefined ? {} : { ref: frame.ref }) });
          return;
        }
        const current = connection;
        if (current === null) throw new AppError('unauthorized', 'authenticate first');
        const ctx = tenantContextOf({
          kind: 'user',
          tenantId: current.tenantId,
          userId: current.userId,
          keyId: '',
          via: 'token',
        });
        const ack = (extra: object = {}) =>
          sendFrame({ type: 'ack', ...(frame.ref === undefined ? {} : { ref: frame.ref }), ...extra });
        if (frame.type === 'send') {
          const { message } = await messages.sendMessage(ctx, frame.conversation_id, {
            text: frame.text,
            ...(frame.client_msg_id === undefined ? {} : { client_msg_id: frame.client_msg_id }),
            ...(frame.thread_root_id === undefined ? {} : { thread_root_id: frame.thread_root_id }),
          });
          ack({ message });
        } else if (frame.type === 'read') {
          await reads.markRead(ctx, frame.conversation_id, frame.seq === undefined ? {} : { seq: frame.seq });
          ack();
        } else {
          if (!current.conversations.has(frame.conversation_id))
            throw new AppError('not_found', 'conversation not found');
          hub.setTyping(current, frame.conversation_id, frame.type === 'typing.start');
          ack();
        }
      };

      socket.on('close', () => {
        clearTimeout(authTimer);
        clearInterval(heartbeat);
        if (connection !== null) hub.remove(connection);
      });
    },
  );
}
