// The Node entry of @parley/client (the `node` export condition): the same API, with `ws` as the WebSocket,
// so the real-time client runs on Node 20, which has no global WebSocket.
import WebSocket from 'ws';
import {
  ParleyClient as BaseParleyClient,
  RealtimeClient as BaseRealtimeClient,
  type ParleyClientOptions,
  type RealtimeOptions,
  type WebSocketConstructor,
} from './index.js';

const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

export * from './index.js';

export class RealtimeClient extends BaseRealtimeClient {
  constructor(options: RealtimeOptions) {
    super({ WebSocket: NodeWebSocket, ...options });
  }
}

export class ParleyClient extends BaseParleyClient {
  constructor(options: ParleyClientOptions) {
    super({ WebSocket: NodeWebSocket, ...options });
  }

  protected override createRealtime(options: RealtimeOptions): RealtimeClient {
    return new RealtimeClient(options);
  }
}
