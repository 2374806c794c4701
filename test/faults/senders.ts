import { NoAnswer, request, type Ledger } from './http.ts';
import { sleep, type Random } from './random.ts';
import { FrameSocket, socketUrl, type WireFrame } from './socket.ts';

/** One message a sender meant to send, and what became of it. */
export interface SendRecord {
  clientMsgId: string;
  senderId: string;
  conversationId: string;
  via: 'http' | 'socket';
  attempts: number;
  /** The message the server acknowledged (2xx, or an `ack` frame), and when. */
  ack: { id: string; seq: number; at: number } | null;
}

/** Shared by the senders of a run: the budget of sends and when to stop. */
export interface SendPlan {
  /** Sends not started yet; each sender takes one before it starts a send. */
  remaining: number;
  /** Sends are spread over this long from `startedAt`, so the budget lasts through the faults. */
  paceMs: number;
  total: number;
  startedAt: number;
  /** No new send starts after this. */
  sendUntil: number;
  /** A send not acknowledged by then is given up (it may or may not be stored; it must not be twice). */
  retryUntil: number;
  records: SendRecord[];
}

/** Takes one send from the budget, waiting while the run is ahead of its pace; false when sending is over. */
async function takeSend(plan: SendPlan): Promise<boolean> {
  for (;;) {
    if (Date.now() >= plan.sendUntil || plan.remaining <= 0) return false;
    const allowed = (plan.total * (Date.now() - plan.startedAt)) / plan.paceMs;
    if (plan.total - plan.remaining < allowed) break;
    await sleep(20);
  }
  plan.remaining--;
  return true;
}

/** A tenant member who sends, over HTTP or over its socket, and retries each send until acknowledged. */
export interface SenderIdentity {
  userId: string;
  token: string;
  conversationIds: readonly string[];
}

/** How long to wait before the next try of a send that got no acknowledgement. */
function backoff(random: Random, attempt: number, retryAfterMs: number | null): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, 2_000);
  return Math.min(1_000, 25 * 2 ** Math.min(attempt, 5)) + random.between(0, 50);
}

function startRecord(
  plan: SendPlan,
  identity: SenderIdentity,
  random: Random,
  via: SendRecord['via'],
  n: number,
) {
  const record: SendRecord = {
    clientMsgId: `${identity.userId}-${n}`,
    senderId: identity.userId,
    conversationId: random.pick(identity.conversationIds),
    via,
    attempts: 0,
    ack: null,
  };
  plan.records.push(record);
  return record;
}

/**
 * Sends over HTTP (POST /v1/conversations/{id}/messages), each try to a random server as a client behind a
 * load balancer would, with the same client_msg_id until acknowledged. A 5xx, a cut connection or a
 * timeout is retried; a 429 after its Retry-After; any other 4xx is a finding (every send is valid).
 */
export async function runHttpSender(
  identity: SenderIdentity,
  servers: readonly { url: string }[],
  plan: SendPlan,
  ledger: Ledger,
  random: Random,
  thinkMs: [number, number],
): Promise<void> {
  for (let n = 1; await takeSend(plan); n++) {
    const record = startRecord(plan, identity, random, 'http', n);
    const body = { text: `${record.clientMsgId} says hello`, client_msg_id: record.clientMsgId };
    while (record.ack === null && Date.now() < plan.retryUntil) {
      record.attempts++;
      const base = random.pick(servers).url;
      let retryAfterMs: number | null = null;
      try {
        const answer = await request(
          ledger,
          base,
          'POST',
          `/v1/conversations/${record.conversationId}/messages`,
          identity.token,
          body,
          { where: 'send (HTTP)' },
        );
        if (answer.status === 200 || answer.status === 201) {
          record.ack = { id: String(answer.body.id), seq: Number(answer.body.seq), at: Date.now() };
          break;
        }
        if (answer.status < 500 && answer.status !== 429) break;
        retryAfterMs = answer.retryAfterMs;
      } catch (error) {
        if (!(error instanceof NoAnswer)) throw error;
      }
      await sleep(backoff(random, record.attempts, retryAfterMs));
    }
    await sleep(random.between(...thinkMs));
  }
}

/**
 * Sends with the socket `send` frame, holding one socket to a random server; a try that gets no `ack` (an
 * `error` frame `internal`/`unavailable`/`rate_limited`, a closed socket, no answer in 10 s) is retried
 * with the same client_msg_id, on a new socket when the old one is gone.
 */
export async function runSocketSender(
  identity: SenderIdentity,
  servers: readonly { url: string }[],
  plan: SendPlan,
  ledger: Ledger,
  random: Random,
  thinkMs: [number, number],
): Promise<void> {
  let socket: FrameSocket | null = null;
  let pending: { ref: string; settle: (frame: WireFrame | null) => void } | null = null;
  const connect = async (): Promise<FrameSocket | null> => {
    try {
      const opened = await FrameSocket.open(socketUrl(random.pick(servers).url, identity.token, null));
      const isReady = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        opened.listen(
          (frame) => {
            if (frame.type === 'ready') {
              clearTimeout(timer);
              resolve(true);
            } else if (pending !== null && frame.ref === pending.ref) {
              pending.settle(frame);
            }
          },
          () => {
            clearTimeout(timer);
            resolve(false);
            pending?.settle(null);
          },
        );
      });
      if (isReady) return opened;
      opened.detach();
      opened.end(true);
    } catch {
      ledger.networkErrors++;
    }
    return null;
  };
  try {
    for (let n = 1; await takeSend(plan); n++) {
      const record = startRecord(plan, identity, random, 'socket', n);
      while (record.ack === null && Date.now() < plan.retryUntil) {
        if (socket === null || !socket.isOpen) socket = await connect();
        if (socket === null) {
          await sleep(backoff(random, 3, null));
          continue;
        }
        record.attempts++;
        const ref = `${record.clientMsgId}#${record.attempts}`;
        const from = Date.now();
        const answer = await new Promise<WireFrame | null>((resolve) => {
          const timer = setTimeout(() => settle(null), 10_000);
          const settle = (frame: WireFrame | null) => {
            clearTimeout(timer);
            pending = null;
            resolve(frame);
          };
          pending = { ref, settle };
          socket?.send({
            type: 'send',
            ref,
            conversation_id: record.conversationId,
            text: `${record.clientMsgId} says hello`,
            client_msg_id: record.clientMsgId,
          });
        });
        if (answer?.type === 'ack' && answer.message) {
          record.ack = { id: answer.message.id, seq: answer.message.seq, at: Date.now() };
          break;
        }
        if (answer === null) {
          // No answer: the socket closed, or the server did not answer in time. Start over on a new one.
          ledger.networkErrors++;
          socket.detach();
          socket.end(true);
          socket = null;
        } else if (answer.code === 'internal' || answer.code === 'unavailable') {
          const status = answer.code === 'internal' ? 500 : 503;
          ledger.serverErrors.push({
            from,
            to: Date.now(),
            status,
            code: answer.code,
            where: 'send (socket)',
          });
        } else if (answer.code === 'rate_limited') {
          ledger.rateLimited++;
        } else {
          ledger.refusals.push({
            at: from,
            status: 0,
            code: answer.code ?? answer.type,
            where: 'send (socket)',
            detail: answer.detail ?? '',
          });
          break;
        }
        await sleep(backoff(random, record.attempts, answer?.code === 'rate_limited' ? 200 : null));
      }
      await sleep(random.between(...thinkMs));
    }
  } finally {
    socket?.detach();
    socket?.end();
  }
}
