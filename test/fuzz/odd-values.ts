import fc from 'fast-check';

// Values no well-behaved client sends, grouped by the class of failure each one probes. The fuzzer puts them
// anywhere a request carries data: a body field, a query parameter, a path segment, a header.

/** Text the database cannot store or that trips parsers: NUL and other controls, lone surrogates, odd marks. */
export const ODD_TEXT = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0001\u0002\u001f\u007f',
  '\ud800',
  '\udfff',
  'x\ud800y',
  '\udc00\ud800',
  '\uffff',
  '\ufffe',
  '\ufeffbom',
  '\u202eevil',
  '\u200b',
  'e\u0301\u0301\u0301',
  '👍🏽',
  '👨‍👩‍👧‍👦',
  '%',
  '%00',
  '%ff',
  '\\',
  '\\u0000',
  '"',
  "'",
  "' OR 1=1 --",
  '$1',
  '{}',
  '[]',
  'null',
  'undefined',
  'true',
  '__proto__',
  'constructor',
  'toString',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '\r\nX-Injected: 1',
] as const;

/** Numbers at and past every boundary: signed 32/64-bit, IEEE doubles, float4, negative zero. */
export const ODD_NUMBERS = [
  0,
  -0,
  -1,
  1.5,
  -1.5,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  1e300,
  -1e300,
  5e-324,
  3.5e38,
] as const;

/** Numbers as text, for query strings, path segments and cursors. */
export const ODD_NUMERALS = [
  '-1',
  '-0',
  '0',
  '00',
  '1.0',
  '1e3',
  '1e400',
  '0x10',
  '+1',
  ' 1',
  '1 ',
  'NaN',
  'Infinity',
  '-Infinity',
  '2147483648',
  '9007199254740993',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775809',
  '99999999999999999999999999999999',
] as const;

/** Timestamps that parse in one place and not another. */
export const ODD_TIMESTAMPS = [
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00.000Z',
  '9999-12-31T23:59:59.999Z',
  '+275760-09-13T00:00:00.000Z',
  '-000001-01-01T00:00:00.000Z',
  '2026-11-22T10:00:00.000+25:00',
  '2026-11-22T24:00:00Z',
  '2026-11-22T10:00:60Z',
  '2026-11-22',
  '1970-01-01T00:00:00Z',
  'now',
  'infinity',
  '-infinity',
  'epoch',
] as const;

/** UUIDs at the edges, and things close to UUIDs. */
export const ODD_UUIDS = [
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  '{019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83}',
  '019a9b6e8f2a7c3e9d415b2f0c7a1e83',
  '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e8',
  '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e833',
  'g19a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83',
] as const;

/** Full-text query syntax that the text-search parser may not take. */
export const ODD_SEARCH = [
  '"',
  '""',
  '"""',
  '-',
  '- -',
  '-"',
  '--a',
  '!',
  '&',
  '|',
  '&|!',
  ':*',
  'a:*',
  'a:A',
  '(((',
  ')))',
  '<->',
  'a <-> b',
  'a & !b',
  'or',
  'OR OR OR',
  '- or -',
  '"-"',
  '\\',
  "'",
  "a'b",
  '中文搜索',
  'ｆｕｌｌｗｉｄｔｈ',
] as const;

/** A JSON array nested `depth` deep: `[[[…]]]`. */
export function nestedArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** A JSON object nested `depth` deep: `{"a":{"a":…}}`. */
export function nestedObject(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Base64url of any JSON: what a forged cursor looks like. */
export const forgedCursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Cursors that decode to values the server never issued. */
export const ODD_CURSORS: readonly string[] = [
  forgedCursor([]),
  forgedCursor(['']),
  forgedCursor(['\u0000']),
  forgedCursor(['\u0000', '\u0000']),
  forgedCursor(['x', 'y']),
  forgedCursor(['x', 'y', 'z']),
  forgedCursor(['-1', '-1']),
  forgedCursor(['99999999999999999999', '00000000-0000-0000-0000-000000000000']),
  forgedCursor(['9999-12-31T23:59:59.999Z', 'ffffffff-ffff-ffff-ffff-ffffffffffff']),
  forgedCursor(['+275760-09-13T00:00:00.000Z', '00000000-0000-0000-0000-000000000000']),
  forgedCursor(['1e400', '00000000-0000-0000-0000-000000000000', '1']),
  forgedCursor(['NaN', 'NaN', 'NaN']),
  forgedCursor(['\ud800', '\ud800']),
  forgedCursor([1, 2]),
  forgedCursor({ prev: '1', now: '2' }),
  forgedCursor({ v: 1, prev: '999999999999999999999', at: 0 }),
  forgedCursor(null),
  forgedCursor('x'),
  forgedCursor(nestedArray(500)),
  '!!!!',
  '====',
  'a',
  ...forgedEventCursors(),
];

/**
 * Event-log cursors (/v1/sync `since`, the socket's `cursor`) of the right shape holding snapshots and
 * numbers PostgreSQL or the server never made: past 64 bits, xmin after xmax, in-progress ids out of range.
 */
function forgedEventCursors(): string[] {
  const at = Date.UTC(2026, 11, 4);
  const max = '99999999999999999999';
  return [
    { prev: `${max}:${max}:`, at },
    { prev: '18446744073709551615:18446744073709551615:', at },
    { prev: '9223372036854775808:9223372036854775808:', at },
    { prev: '10:5:', at },
    { prev: '5:10:3', at },
    { prev: '5:10:7,6,6', at },
    { prev: '0:0:', at },
    { prev: '1:2:', at, now: `${max}:${max}:`, afterId: Number.MAX_SAFE_INTEGER },
    { prev: '1:2:', at, now: '1:1:', afterId: 0 },
    { prev: '1:2:', at: Number.MAX_SAFE_INTEGER },
    { prev: '1:2:', at: -Number.MAX_SAFE_INTEGER },
  ].map(forgedCursor);
}

/** Scalars of every JSON type and of none: what a field of the wrong type receives. */
export const oddScalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(...ODD_TEXT, ...ODD_NUMBERS, ...ODD_NUMERALS, ...ODD_TIMESTAMPS, ...ODD_UUIDS),
  fc.constantFrom<unknown>(null, true, false, [], {}, [null], [[]], { '': null }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((value) => Number(value)),
);

/** Structures deeper or larger than any user needs. */
export const oddStructure: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(10, 100, 1000).map(nestedArray),
  fc.constantFrom(10, 100, 1000).map(nestedObject),
  fc.constantFrom(1000, 20_000).map((length) => Array.from({ length }, (_, i) => i)),
  fc
    .constantFrom(1000, 10_000)
    .map((length) => Object.fromEntries(Array.from({ length }, (_, i) => [`k${i}`, i]))),
  fc.constantFrom(10_001, 100_000, 600_000).map((length) => 'a'.repeat(length)),
  fc.constantFrom(5001, 40_000).map((length) => '👍'.repeat(length)),
  fc.constantFrom(10_001).map((length) => '\u0000'.repeat(length)),
);

/** Any odd value: mostly scalars, sometimes a structure. */
export const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: oddScalar },
  { weight: 1, arbitrary: oddStructure },
);

/** Odd text for places that only carry text (query strings, path segments, headers). */
export const oddText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<string>(...ODD_TEXT, ...ODD_NUMERALS, ...ODD_TIMESTAMPS, ...ODD_UUIDS),
  },
  { weight: 2, arbitrary: fc.constantFrom<string>(...ODD_SEARCH, ...ODD_CURSORS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(600, 5000, 70_000).map((length) => 'x'.repeat(length)) },
);
