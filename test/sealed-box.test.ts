import { describe, expect, it } from 'vitest';
import { createSealedBox } from '../src/sealed-box.ts';

describe('sealed box', () => {
  const box = createSealedBox('a-server-key-of-at-least-32-characters', 'purpose');

  it('round-trips text, with a fresh nonce each time', () => {
    const text = 'psk_secret ✓ ünïcode';
    const a = box.seal(text);
    const b = box.seal(text);
    expect(a).not.toBe(b);
    expect(a).not.toContain('psk_secret');
    expect(box.open(a)).toBe(text);
    expect(box.open(b)).toBe(text);
  });

  it('refuses altered values, other keys and other purposes', () => {
    const sealed = box.seal('hello');
    const flipped = sealed.slice(0, -2) + (sealed.endsWith('AA') ? 'BB' : 'AA');
    expect(() => box.open(flipped)).toThrow();
    expect(() => createSealedBox('another-server-key-of-32-characters!!', 'purpose').open(sealed)).toThrow();
    expect(() => createSealedBox('a-server-key-of-at-least-32-characters', 'other').open(sealed)).toThrow();
    expect(() => box.open('plain text')).toThrow();
  });
});
