import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.ts';
import {
  DEFAULT_LINK_TTL_SECONDS,
  FILE_LINK_PATH_PREFIX,
  signFileLink,
  verifyFileLink,
  type FileLinkClaims,
} from '../src/modules/attachments/attachment-links.ts';

const key = randomBytes(32);
const issuedAt = new Date('2026-12-07T12:00:00.000Z');
const claims: FileLinkClaims = {
  tenantId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  attachmentId: '0193a1b2-ffff-7000-8000-123456789abc',
  rendition: 'thumb256',
  expiresAt: new Date(issuedAt.getTime() + DEFAULT_LINK_TTL_SECONDS * 1000),
};

const tokenOf = (path: string) => path.slice(FILE_LINK_PATH_PREFIX.length);

/** The status of the AppError `verify` throws, or fails when it throws anything else or nothing. */
function refusal(verify: () => unknown): number {
  try {
    verify();
  } catch (error) {
    if (error instanceof AppError) return error.status;
    throw error;
  }
  throw new Error('the link was accepted');
}

/** The token with its payload's byte at `index` changed (XOR 1), the MAC left as it was. */
function withPayloadByteFlipped(token: string, index: number): string {
  const [payload = '', mac = ''] = token.split('.');
  const bytes = Buffer.from(payload, 'base64url');
  bytes[index] = (bytes[index] ?? 0) ^ 1;
  return `${bytes.toString('base64url')}.${mac}`;
}

describe('file links', () => {
  it('read back what was signed, from a short URL-safe path, until they expire', () => {
    const path = signFileLink(key, claims);
    expect(path.startsWith('/v1/files/')).toBe(true);
    const token = tokenOf(path);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThanOrEqual(100);
    expect(verifyFileLink(key, token, issuedAt)).toEqual(claims);
    expect(verifyFileLink(key, token, new Date(claims.expiresAt.getTime() - 1))).toEqual(claims);
    for (const rendition of ['original', 'thumb256', 'thumb1024'] as const) {
      expect(verifyFileLink(key, tokenOf(signFileLink(key, { ...claims, rendition })), issuedAt)).toEqual({
        ...claims,
        rendition,
      });
    }
  });

  it('name ids in lower case and expiries in whole seconds, as they are signed', () => {
    const token = tokenOf(
      signFileLink(key, {
        ...claims,
        tenantId: claims.tenantId.toUpperCase(),
        expiresAt: new Date(claims.expiresAt.getTime() + 999),
      }),
    );
    expect(verifyFileLink(key, token, issuedAt)).toEqual(claims);
  });

  it('are refused (403) once any byte of the payload is changed: version, rendition, expiry, tenant, attachment', () => {
    const token = tokenOf(signFileLink(key, claims));
    for (let index = 0; index < 40; index++) {
      expect(refusal(() => verifyFileLink(key, withPayloadByteFlipped(token, index), issuedAt))).toBe(403);
    }
  });

  it('are refused (403) when another link of the same key lends its MAC: one link never opens another', () => {
    const token = tokenOf(signFileLink(key, claims));
    const others: FileLinkClaims[] = [
      { ...claims, tenantId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c' },
      { ...claims, attachmentId: '0193a1b2-ffff-7000-8000-123456789abd' },
      { ...claims, rendition: 'original' },
      { ...claims, expiresAt: new Date(claims.expiresAt.getTime() + 86_400_000) },
    ];
    const mac = token.split('.')[1] ?? '';
    for (const other of others) {
      const otherPayload = tokenOf(signFileLink(key, other)).split('.')[0] ?? '';
      expect(refusal(() => verifyFileLink(key, `${otherPayload}.${mac}`, issuedAt))).toBe(403);
    }
  });

  it('are refused (403) under another key', () => {
    const token = tokenOf(signFileLink(key, claims));
    expect(refusal(() => verifyFileLink(randomBytes(32), token, issuedAt))).toBe(403);
  });

  it('are refused (403), never a 500, when truncated, padded, re-spelled or garbage', () => {
    const token = tokenOf(signFileLink(key, claims));
    const [payload = '', mac = ''] = token.split('.');
    const tokens = [
      '',
      '.',
      '..',
      'garbage',
      'a.b',
      `${payload}.`,
      `.${mac}`,
      payload,
      `${payload}.${mac}.`,
      `${payload}.${mac}.${mac}`,
      token.slice(0, -1),
      token.slice(1),
      `${token}A`,
      `${payload}=.${mac}`,
      `${payload}.${mac}=`,
      `${payload}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`,
      // The same bytes in standard base64 (`+`, `/`), which Node would decode alike.
      `${Buffer.from(payload, 'base64url').toString('base64')}.${Buffer.from(mac, 'base64url').toString('base64')}`,
      `${payload}.${Buffer.alloc(32).toString('base64url')}`,
      `${Buffer.alloc(40).toString('base64url')}.${mac}`,
      `${payload} .${mac}`,
      `${payload}.${mac}\n`,
      '💥'.repeat(100),
      'A'.repeat(10_000),
    ];
    for (const each of tokens) {
      expect(
        refusal(() => verifyFileLink(key, each, issuedAt)),
        JSON.stringify(each),
      ).toBe(403);
    }
  });

  it('are gone (410) from their expiry on, and only when genuine', () => {
    const token = tokenOf(signFileLink(key, claims));
    expect(refusal(() => verifyFileLink(key, token, claims.expiresAt))).toBe(410);
    expect(refusal(() => verifyFileLink(key, token, new Date('2030-01-01T00:00:00Z')))).toBe(410);
    const later = new Date(claims.expiresAt.getTime() + 1000);
    for (let index = 0; index < 40; index++) {
      expect(refusal(() => verifyFileLink(key, withPayloadByteFlipped(token, index), later))).toBe(403);
    }
    expect(refusal(() => verifyFileLink(randomBytes(32), token, later))).toBe(403);
  });

  it('carry the codes the error table documents', () => {
    const token = tokenOf(signFileLink(key, claims));
    const codeOf = (verify: () => unknown) => {
      try {
        verify();
      } catch (error) {
        return error instanceof AppError ? error.code : 'not an AppError';
      }
      return 'accepted';
    };
    expect(codeOf(() => verifyFileLink(key, 'garbage', issuedAt))).toBe('forbidden');
    expect(codeOf(() => verifyFileLink(key, token, claims.expiresAt))).toBe('gone');
  });

  it('refuse to be made or checked with a short key, or for ids that are not UUIDs (bugs, not requests)', () => {
    expect(() => signFileLink(randomBytes(16), claims)).toThrow(TypeError);
    expect(() => verifyFileLink(randomBytes(16), 'a.b', issuedAt)).toThrow(TypeError);
    expect(() => signFileLink(key, { ...claims, attachmentId: 'att_1' })).toThrow(TypeError);
    expect(() => signFileLink(key, { ...claims, expiresAt: new Date(Number.NaN) })).toThrow(TypeError);
  });
});
