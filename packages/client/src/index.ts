// @parley/client: a typed client for Parley. `ParleyClient` calls every REST route, typed from the server's
// OpenAPI document; its `realtime()` opens the WebSocket that resumes without gaps and sends messages
// optimistically. This entry runs in browsers and in Node 22+ (which have a global WebSocket); the Node
// entry (chosen by the `node` export condition) uses `ws`, for Node 20 too. Guide: packages/client/README.md.
import { RealtimeClient, type RealtimeOptions, type WebSocketConstructor } from './realtime.js';
import { RestClient, type RestOptions } from './rest.js';

export interface ParleyClientOptions extends RestOptions {
  /** The WebSocket class for `realtime()`; default: the global one (the Node entry: `ws`). */
  WebSocket?: WebSocketConstructor;
}

/** Options of one real-time connection; the server, token and REST client are the ParleyClient's. */
export type ConnectOptions = Omit<RealtimeOptions, 'baseUrl' | 'token' | 'rest' | 'WebSocket'>;

/**
 * The client of one Parley server with one credential. REST: `get`, `post`, `put`, `patch` and `delete` take
 * a path of the OpenAPI document and its typed `params` and `body`, and resolve to the typed response body
 * (a refusal throws `ParleyError`); `api` is the underlying openapi-fetch client.
 *
 *     const parley = new ParleyClient({ baseUrl: 'https://chat.example.com', token: userToken });
 *     const { data } = await parley.get('/v1/conversations', { params: { query: { limit: 20 } } });
 *     const live = parley.realtime();
 *     live.onEvent('message.created', (event) => show(event.data));
 *     await live.connect();
 *     live.send(conversationId, { text: 'hi' });
 */
export class ParleyClient extends RestClient {
  readonly #baseUrl: string;
  readonly #token: RestOptions['token'];
  readonly #WebSocket: WebSocketConstructor | undefined;

  constructor(options: ParleyClientOptions) {
    super(options);
    this.#baseUrl = options.baseUrl;
    this.#token = options.token;
    this.#WebSocket = options.WebSocket;
  }

  /** A real-time connection with this client's credential (a user token); call `connect()` on it. */
  realtime(options: ConnectOptions = {}): RealtimeClient {
    return this.createRealtime({
      ...options,
      baseUrl: this.#baseUrl,
      token: this.#token,
      rest: this,
      ...(this.#WebSocket === undefined ? {} : { WebSocket: this.#WebSocket }),
    });
  }

  /** Makes the real-time client (the Node entry's makes its own class). */
  protected createRealtime(options: RealtimeOptions): RealtimeClient {
    return new RealtimeClient(options);
  }
}

export { RealtimeClient, RestClient };
export type {
  OutgoingMessage,
  RealtimeEvents,
  RealtimeOptions,
  RealtimeState,
  SocketLike,
  WebSocketConstructor,
} from './realtime.js';
export type { CallMethod, PathsWith, ResponseData, RestOptions, TokenSource } from './rest.js';
export { ParleyError } from './errors.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export type * from './types.js';
