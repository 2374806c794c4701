import type { Duplex } from 'node:stream';

/**
 * A complete WebSocket text frame as a server sends it (RFC 6455 §5.2: FIN, opcode 1, unmasked), built once
 * per event and written as is to every socket that receives the event, instead of framing it again for
 * each one.
 */
export function encodeTextFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, headerLength);
  return frame;
}

const corked = new Set<Duplex>();
let isFlushScheduled = false;

function uncorkAll(): void {
  isFlushScheduled = false;
  for (const transport of corked) transport.uncork();
  corked.clear();
}

/**
 * Holds a socket's writes until the next tick, so the frames it is sent in this tick leave in one write
 * (one syscall). One callback uncorks every socket corked in the tick.
 */
export function corkUntilNextTick(transport: Duplex): void {
  if (corked.has(transport)) return;
  transport.cork();
  corked.add(transport);
  if (!isFlushScheduled) {
    isFlushScheduled = true;
    process.nextTick(uncorkAll);
  }
}
