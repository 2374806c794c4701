import WebSocket from 'ws';

function textOf(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(new Uint8Array(data)).toString('utf8');
}

/** An event as the socket and GET /v1/sync carry it. */
export interface WireEvent {
  type: string;
  conversation_id: string;
  seq?: number;
  cursor?: string;
  data: Record<string, unknown>;
}

/** A frame the server sent. */
export interface WireFrame {
  type: string;
  ref?: string;
  code?: string;
  detail?: string;
  cursor?: string;
  message?: { id: string; seq: number; client_msg_id?: string | null };
  event?: WireEvent;
}

/**
 * A lean WebSocket client for the suite: hands every frame to one listener, in order, and can be cut off
 * (`detach`) so that nothing more is taken from it, at a point between two frames.
 */
export class FrameSocket {
  private onFrame: ((frame: WireFrame) => void) | null = null;
  private onClose: ((code: number) => void) | null = null;
  /**
   * Frames that came before `listen`: the upgrade's answer and the first frames (a `ready` right after an
   * `?access_token=` upgrade) can arrive in one TCP read, and ws emits them before `open`'s awaiter runs.
   */
  private early: WireFrame[] | null = [];
  closeCode: number | null = null;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: WebSocket.RawData) => {
      const frame = JSON.parse(textOf(data)) as WireFrame;
      if (this.early !== null) this.early.push(frame);
      else this.handOver(frame);
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      if (this.early === null) this.handOverClose(code);
    });
    // After `open`, errors are followed by `close`, which is what the users of this class act on.
    socket.on('error', () => {});
  }

  /** Opens a socket; rejects when the connection or the upgrade fails. */
  static open(url: string, timeoutMs = 10_000): Promise<FrameSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false });
      const client = new FrameSocket(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) => {
        reject(new Error(`HTTP ${response.statusCode}`));
        socket.terminate();
      });
    });
  }

  listen(onFrame: (frame: WireFrame) => void, onClose: (code: number) => void): void {
    this.onFrame = onFrame;
    this.onClose = onClose;
    const early = this.early ?? [];
    this.early = null;
    // A listener may detach while these are handed over: each goes through the current one.
    for (const frame of early) this.handOver(frame);
    if (this.closeCode !== null) this.handOverClose(this.closeCode);
  }

  private handOver(frame: WireFrame): void {
    this.onFrame?.(frame);
  }

  private handOverClose(code: number): void {
    this.onClose?.(code);
  }

  /** Takes nothing more from this socket: frames still in flight are dropped. */
  detach(): void {
    this.early = null;
    this.onFrame = null;
    this.onClose = null;
  }

  send(frame: object): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN && this.closeCode === null;
  }

  /** A clean close (1000), or an abrupt one (the TCP connection is destroyed). */
  end(abrupt = false): void {
    if (abrupt) this.socket.terminate();
    else this.socket.close();
  }
}

/** The socket URL of a server, with a user token and, when resuming, a cursor. */
export function socketUrl(base: string, token: string, cursor: string | null): string {
  const url = `${base.replace(/^http/, 'ws')}/v1/ws?access_token=${encodeURIComponent(token)}`;
  return cursor === null ? url : `${url}&cursor=${encodeURIComponent(cursor)}`;
}
