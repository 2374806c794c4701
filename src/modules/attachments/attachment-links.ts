import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../errors.ts';

/** How long a signed file link lives unless the caller says otherwise: one hour (docs/ATTACHMENTS.md, "Links"). */
export const DEFAULT_LINK_TTL_SECONDS = 3600;

/** Every stored form of an attachment a link can name: the bytes uploaded, and the two thumbnail sizes. */
export const RENDITIONS = ['original', 'thumb256', 'thumb1024'] as const;
export type Rendition = (typeof RENDITIONS)[number];

/** What one link grants: this rendition of this attachment of this tenant, until `expiresAt` (whole seconds). */
export interface FileLinkClaims {
  tenantId: string;
  attachmentId: string;
  rendition: Rendition;
  expiresAt: Date;
}

/** The path every file link starts with; the token follows it. */
export const FILE_LINK_PATH_PREFIX = '/v1/files/';

/** Changed together with the payload layout or the signed string, so old links fail instead of misreading. */
const FORMAT_VERSION = 1;
/** Keeps these MACs apart from any other HMAC made with a key derived from the same server key. */
const DOMAIN = 'parley-file-link-v1';
const MIN_KEY_BYTES = 32;
const MAC_BYTES = 32;
/** version (1) + rendition (1) + expiry in unix seconds (6, big-endian) + tenant id (16) + attachment id (16). */
const PAYLOAD_BYTES = 40;
/** Six bytes of seconds: far beyond any date a `Date` holds, so every expiry fits. */
const EXPIRY_BYTES = 6;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The path of a link to one rendition of one attachment (`/v1/files/<payload>.<mac>`), valid until
 * `expiresAt` rounded down to the second. The token is URL-safe and about 100 characters; it is the whole
 * credential, so it is logged and shared like a password for the hour it lives.
 */
export function signFileLink(key: Uint8Array, claims: FileLinkClaims): string {
  checkKey(key);
  const expiresAtSeconds = Math.floor(claims.expiresAt.getTime() / 1000);
  if (!Number.isSafeInteger(expiresAtSeconds) || expiresAtSeconds < 0) {
    throw new TypeError('a file link needs an expiry after 1970');
  }
  const renditionIndex = RENDITIONS.indexOf(claims.rendition);
  if (renditionIndex < 0) throw new TypeError(`unknown rendition ${claims.rendition}`);
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(FORMAT_VERSION, 0);
  payload.writeUInt8(renditionIndex, 1);
  payload.writeUIntBE(expiresAtSeconds, 2, EXPIRY_BYTES);
  uuidBytes(claims.tenantId).copy(payload, 8);
  uuidBytes(claims.attachmentId).copy(payload, 24);
  const decoded = decodePayload(payload);
  if (decoded === undefined) throw new TypeError('a file link payload did not read back');
  const mac = macOf(key, decoded);
  return `${FILE_LINK_PATH_PREFIX}${payload.toString('base64url')}.${mac.toString('base64url')}`;
}

/**
 * What the token of a file link grants, checked against `key`: `forbidden` (403) for anything Parley did not
 * sign with this key exactly as it is (altered, truncated, padded, garbage), and only then `gone`
 * (410) once `now` has reached its expiry — so an altered expired link is still 403 and a 410 says the link
 * was genuine.
 */
export function verifyFileLink(key: Uint8Array, token: string, now: Date): FileLinkClaims {
  checkKey(key);
  const [payloadText, macText, ...rest] = token.split('.');
  if (payloadText === undefined || macText === undefined || rest.length > 0) throw notALink();
  const payload = strictBase64url(payloadText, PAYLOAD_BYTES);
  const mac = strictBase64url(macText, MAC_BYTES);
  if (payload === undefined || mac === undefined) throw notALink();
  const claims = decodePayload(payload);
  if (claims === undefined) throw notALink();
  const expected = macOf(key, claims);
  // Both are MAC_BYTES long here (checked above), as timingSafeEqual requires.
  if (!timingSafeEqual(expected, mac)) throw notALink();
  if (now.getTime() >= claims.expiresAt.getTime()) {
    throw new AppError('gone', 'this file link has expired; fetch the attachment again for a new one');
  }
  return claims;
}

const notALink = () => new AppError('forbidden', 'this is not a valid file link');

function checkKey(key: Uint8Array): void {
  // A programming error (a key not derived as it should be), not the client's: a 500, loudly.
  if (key.byteLength < MIN_KEY_BYTES)
    throw new TypeError(`a file link key needs ${MIN_KEY_BYTES} bytes or more`);
}

/**
 * The MAC over a string naming every field, prefixed by the domain: what is signed is what is read back,
 * whatever the byte layout carries it.
 */
function macOf(key: Uint8Array, claims: FileLinkClaims): Buffer {
  const signed = [
    DOMAIN,
    claims.tenantId,
    claims.attachmentId,
    claims.rendition,
    String(claims.expiresAt.getTime() / 1000),
  ].join('\n');
  return createHmac('sha256', key).update(signed, 'utf8').digest();
}

/** The bytes of base64url text of exactly `length` bytes in its one canonical spelling, else undefined. */
function strictBase64url(text: string, length: number): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  // Node ignores stray bits and characters; re-encoding refuses every other spelling of the same bytes.
  if (bytes.length !== length || bytes.toString('base64url') !== text) return undefined;
  return bytes;
}

function decodePayload(payload: Buffer): FileLinkClaims | undefined {
  if (payload.length !== PAYLOAD_BYTES || payload.readUInt8(0) !== FORMAT_VERSION) return undefined;
  const rendition = RENDITIONS[payload.readUInt8(1)];
  if (rendition === undefined) return undefined;
  const expiresAt = new Date(payload.readUIntBE(2, EXPIRY_BYTES) * 1000);
  if (Number.isNaN(expiresAt.getTime())) return undefined;
  return {
    tenantId: uuidText(payload.subarray(8, 24)),
    attachmentId: uuidText(payload.subarray(24, 40)),
    rendition,
    expiresAt,
  };
}

function uuidBytes(id: string): Buffer {
  if (!UUID.test(id)) throw new TypeError(`a file link names ids that are UUIDs, not ${id}`);
  return Buffer.from(id.replaceAll('-', ''), 'hex');
}

function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
