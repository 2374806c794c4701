import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// An api key secret is `psk_<key id, 32 hex>_<HMAC-SHA256(server key, key id), base64url>`. The server can
// re-derive it to verify user tokens (HS256 needs the secret itself), yet the database only ever holds its
// SHA-256: a copy of the database alone reveals no secret.

const SECRET_PATTERN = /^psk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/** The secret of key `keyId` under `serverKey`. */
export function deriveApiKeySecret(serverKey: string, keyId: string): string {
  const mac = createHmac('sha256', serverKey).update(`parley:api-key:v1:${keyId}`).digest('base64url');
  return `psk_${keyId.replaceAll('-', '')}_${mac}`;
}

/** The key id a presented secret names, or null when it is not shaped like an api key secret. */
export function keyIdOfSecret(secret: string): string | null {
  const hex = SECRET_PATTERN.exec(secret)?.[1];
  if (hex === undefined) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What is stored in place of a secret or token. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function isSecretOfHash(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
