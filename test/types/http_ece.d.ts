// http_ece (Encrypted Content-Encoding for HTTP, RFC 8188) ships no types: what the push tests use of it.
declare module 'http_ece' {
  import type { ECDH } from 'node:crypto';

  /** Decrypts an aes128gcm body (RFC 8291): the keyid of its header is the sender's public key. */
  export function decrypt(
    buffer: Buffer,
    params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: string },
  ): Buffer;
}
