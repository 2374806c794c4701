// A socket-holding worker thread: opens one authenticated WebSocket per user it is given, sends `send`
// frames at a fixed rate when asked, and records, for every message.created it receives from someone else,
// the time from when the message was meant to be sent to its arrival, in an HDR histogram.
import * as hdr from 'hdr-histogram-js';
import { SignJWT } from 'jose';
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

/** What the worker is started with. */
export interface SocketWorkerSetup {
  wsUrl: string;
  apiKey: { id: string; secret: string };
  /** One socket per user. */
  users: string[];
  /** Sockets opening at once while connecting. */
  connectConcurrency: number;
}

/** What the main thread asks of a worker, one command at a time. */
export type SocketCommand =
  | { kind: 'connect' }
  | {
      kind: 'measure';
      durationMs: number;
      /** Drain time after the last send, for deliveries still in flight. */
      drainMs: number;
      /** Sends over this worker's sockets, open loop; none means the worker only receives. */
      send?: { ratePerSecond: number; conversationOfUser: Record<string, string> };
    }
  | { kind: 'close' };

export interface SocketReport {
  connected: number;
  failed: number;
  sent: number;
  acked: number;
  sendErrors: number;
  deliveries: number;
  /** HDR histogram of delivery latency (µs), base64. */
  histogram: string;
}

const setup = workerData as SocketWorkerSetup;
const now = () => performance.timeOrigin + performance.now(); // comparable across threads
const newHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

let histogram = newHistogram();
let deliveries = 0;
let sent = 0;
let acked = 0;
let sendErrors = 0;
let failed = 0;
const sockets = new Map<string, WebSocket>();

const secret = new TextEncoder().encode(setup.apiKey.secret);
/** A user token, signed here as a tenant backend would sign it. */
const tokenOf = (userId: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: setup.apiKey.id })
    .setSubject(userId)
    .setExpirationTime('2h')
    .sign(secret);

const textOf = (data: WebSocket.RawData): string =>
  Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');

function onFrame(userId: string, data: WebSocket.RawData): void {
  const frame = JSON.parse(textOf(data)) as {
    type: string;
    code?: string;
    event?: { type: string; data: { sender_id?: string; text?: string } };
  };
  if (frame.type === 'ack') acked++;
  else if (frame.type === 'error') sendErrors++;
  else if (frame.type === 'event' && frame.event?.type === 'message.created') {
    const message = frame.event.data;
    if (message.sender_id === userId) return;
    // The text is "t:<epoch ms, fractional>" of when the message was meant to be sent.
    const sentAt = Number(message.text?.slice(2));
    if (!Number.isFinite(sentAt)) return;
    deliveries++;
    histogram.recordValue(Math.max(1, Math.round((now() - sentAt) * 1000)));
  }
}

async function open(userId: string): Promise<void> {
  const url = `${setup.wsUrl}?access_token=${await tokenOf(userId)}`;
  await new Promise<void>((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      failed++;
      socket.terminate();
      resolve();
    }, 30_000);
    socket.on('message', (data) => {
      if (!sockets.has(userId)) {
        clearTimeout(timer);
        sockets.set(userId, socket);
        resolve();
        return; // the ready frame
      }
      onFrame(userId, data);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!sockets.has(userId)) {
        clearTimeout(timer);
        failed++;
        resolve();
      }
    });
  });
}

async function connect(): Promise<void> {
  const queue = [...setup.users];
  await Promise.all(
    Array.from({ length: setup.connectConcurrency }, async () => {
      for (let userId = queue.pop(); userId !== undefined; userId = queue.pop()) await open(userId);
    }),
  );
}

async function measure(command: Extract<SocketCommand, { kind: 'measure' }>): Promise<void> {
  histogram = newHistogram();
  deliveries = sent = acked = sendErrors = 0;
  const start = now();
  if (command.send !== undefined && command.send.ratePerSecond > 0) {
    const { ratePerSecond, conversationOfUser } = command.send;
    const senders = [...sockets.keys()].filter((userId) => conversationOfUser[userId] !== undefined);
    const total = Math.floor((ratePerSecond * command.durationMs) / 1000);
    for (let index = 0; index < total; index++) {
      const intended = start + (index * 1000) / ratePerSecond;
      const wait = intended - now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const userId = senders[index % senders.length] ?? '';
      sockets.get(userId)?.send(
        JSON.stringify({
          type: 'send',
          ref: String(index),
          conversation_id: conversationOfUser[userId],
          text: `t:${intended}`,
        }),
      );
      sent++;
    }
  } else {
    await new Promise((resolve) => setTimeout(resolve, command.durationMs));
  }
  await new Promise((resolve) => setTimeout(resolve, command.drainMs));
}

function report(): SocketReport {
  return {
    connected: sockets.size,
    failed,
    sent,
    acked,
    sendErrors,
    deliveries,
    histogram: hdr.encodeIntoCompressedBase64(histogram),
  };
}

parentPort?.on('message', (command: SocketCommand) => {
  void (async () => {
    if (command.kind === 'connect') await connect();
    else if (command.kind === 'measure') await measure(command);
    else {
      for (const socket of sockets.values()) socket.terminate();
      sockets.clear();
    }
    parentPort?.postMessage(report());
    if (command.kind === 'close') parentPort?.close();
  })();
});
