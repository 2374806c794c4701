import WebSocket from 'ws';
import { textOf } from '../../src/realtime/gateway-socket.ts';

/** A frame the server sent. */
export interface ServerFrame {
  type: string;
  ref?: string;
  code?: string;
  cursor?: string;
  user_id?: string;
  message?: { id: string; seq: number };
  event?: {
    type: string;
    conversation_id: string;
    seq?: number;
    cursor?: string;
    data: Record<string, unknown>;
  };
}

/** A real WebSocket client that records every frame and can wait for the one a test expects. */
export class TestSocket {
  readonly frames: ServerFrame[] = [];
  closeCode: number | null = null;
  /** The reason the close frame gave, once closed. */
  closeReason = '';
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      // The protocol is JSON text frames only (a browser would hand a binary frame over as a Blob).
      if (isBinary) throw new Error(`the server sent a binary frame: ${textOf(data).slice(0, 80)}`);
      this.frames.push(JSON.parse(textOf(data)) as ServerFrame);
      for (const waiter of this.waiters) waiter();
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const waiter of this.waiters) waiter();
    });
  }

  /** Opens a socket (resolves once open, not once authenticated). */
  static open(url: string, headers: Record<string, string> = {}): Promise<TestSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers });
      const client = new TestSocket(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
    });
  }

  send(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** Resolves with the first frame (from `from` on) that matches, or rejects after `timeoutMs`. */
  waitFor(match: (frame: ServerFrame) => boolean, timeoutMs = 5000, from = 0): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.slice(from).find(match);
        if (found) {
          cleanup();
          resolve(found);
        } else if (this.closeCode !== null) {
          cleanup();
          reject(new Error(`socket closed with ${this.closeCode} before the frame arrived`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.map((f) => f.event?.type ?? f.type))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves with the close code. */
  waitForClose(timeoutMs = 8000): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.closeCode !== null) return resolve(this.closeCode);
      const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
      this.socket.once('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** The events received so far, in order. */
  events(): NonNullable<ServerFrame['event']>[] {
    return this.frames.flatMap((frame) => (frame.type === 'event' && frame.event ? [frame.event] : []));
  }

  close(): Promise<number> {
    this.socket.close();
    return this.waitForClose();
  }
}
