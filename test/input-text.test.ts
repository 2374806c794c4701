import { describe, expect, it } from 'vitest';
import { findUnstorableText, isJsonDeeperThan, isStorableText } from '../src/http/input-text.ts';
import { decodeCursor, encodeCursor } from '../src/modules/events/events.cursor.ts';

describe('isJsonDeeperThan', () => {
  it('counts nesting of arrays and objects, not brackets inside strings or after escapes', () => {
    expect(isJsonDeeperThan('[[[]]]', 3)).toBe(false);
    expect(isJsonDeeperThan('[[[[]]]]', 3)).toBe(true);
    expect(isJsonDeeperThan('{"a":{"b":[1]}}', 3)).toBe(false);
    expect(isJsonDeeperThan('{"a":{"b":[{}]}}', 3)).toBe(true);
    expect(isJsonDeeperThan(JSON.stringify({ text: '[[[[[[{{{{' }), 1)).toBe(false);
    expect(isJsonDeeperThan(JSON.stringify({ text: 'a\\"[[[[' }), 1)).toBe(false);
    expect(isJsonDeeperThan(`[${'[]'.repeat(1000)}]`, 2)).toBe(false);
  });
});

describe('storable text', () => {
  it('refuses NUL and lone surrogates, and takes every other character', () => {
    expect(isStorableText('a\u0000b')).toBe(false);
    expect(isStorableText('\ud800')).toBe(false);
    expect(isStorableText('x\udc00')).toBe(false);
    expect(isStorableText('👍🏽 e\u0301 \u0001 \t\n\ufeff')).toBe(true);
  });

  it('names the first field or key that is not storable, as a JSON pointer', () => {
    expect(findUnstorableText({ text: 'ok', metadata: { list: ['fine', 'bad\u0000'] } })).toBe(
      '/metadata/list/1',
    );
    expect(findUnstorableText({ metadata: { 'a/b': { 'k\ud800': 1 } } })).toBe('/metadata/a~1b/k\ufffd');
    expect(findUnstorableText('\ud800')).toBe('');
    expect(findUnstorableText({ text: 'fine', n: 1, b: true, z: null })).toBeNull();
  });
});

describe('event cursors', () => {
  const at = Date.now();
  it('take every snapshot PostgreSQL writes', () => {
    for (const prev of ['1:1:', '5:10:', '5:10:5', '5:10:5,7,9', '5:10:6,6']) {
      expect(decodeCursor(encodeCursor({ prev, at }))).toEqual({ prev, at });
    }
  });

  it('refuse snapshots PostgreSQL would not take, with a 400 rather than its error', () => {
    for (const prev of [
      '0:0:',
      '0:5:',
      '10:5:',
      '5:10:4',
      '5:10:10',
      '5:10:8,7',
      '9223372036854775808:9223372036854775808:',
    ]) {
      expect(() => decodeCursor(encodeCursor({ prev, at })), prev).toThrow('cursor is not valid');
    }
    expect(() => decodeCursor(encodeCursor({ prev: '1:2:', now: '3:2:', afterId: 0, at }))).toThrow(
      'cursor is not valid',
    );
  });
});
