// s3rver (an S3 server on the local disk, for tests) ships no types: what test/helpers/s3-server.ts uses of it.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  /** What a middleware sees of a request (s3rver is a Koa application): the few fields the helper reads or sets. */
  export interface S3rverContext {
    method: string;
    path: string;
    query: Record<string, string | string[] | undefined>;
    status: number;
    body: unknown;
    /** The response's Content-Type (Koa's shorthand). */
    type: string;
  }

  /** A Koa middleware. */
  export type S3rverMiddleware = (context: S3rverContext, next: () => Promise<void>) => Promise<void>;

  export interface S3rverOptions {
    address?: string;
    /** 0 for any free port: `run()` answers with the one bound. */
    port?: number;
    silent?: boolean;
    /** Where buckets and objects are kept. */
    directory?: string;
    /** Buckets created before the server listens. */
    configureBuckets?: { name: string }[];
  }

  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware stack, run in order; read when the server starts listening. */
    middleware: S3rverMiddleware[];
    /** Creates the configured buckets and listens: the address bound. */
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
