import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens text with AES-256-GCM. */
export interface SealedBox {
  seal(plaintext: string): string;
  /** Throws if the text was not sealed under this key and purpose, or was altered. */
  open(sealed: string): string;
}

/**
 * Authenticated encryption for data at rest that the server must read back (stored responses that carry
 * secrets). The key is derived from the server key for one `purpose`, so a copy of the database alone
 * reveals nothing, and a value sealed for one purpose cannot be opened as another.
 */
export function createSealedBox(serverKey: string, purpose: string): SealedBox {
  const key = Buffer.from(hkdfSync('sha256', serverKey, Buffer.alloc(0), `parley:${purpose}:${VERSION}`, 32));
  return {
    seal(plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
    },
    open(sealed) {
      const [version, payload] = sealed.split('.');
      if (version !== VERSION || payload === undefined) throw new Error('not a sealed value');
      const bytes = Buffer.from(payload, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    },
  };
}
