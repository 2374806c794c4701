import { Readable } from 'node:stream';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handleError, notFound } from '../src/errors.ts';
import { FILE_CONTENT_SECURITY_POLICY, serveObject, type ServableObject } from '../src/http/serve-object.ts';
import type { ByteRange } from '../src/storage/object-storage.ts';
import { contentDisposition } from '../src/media/file-names.ts';

const BYTES = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(3)); // 108 bytes
const ETAG = '"3f8c0d2b5f1e4a6b"';
const LAST_MODIFIED = new Date('2026-12-01T10:20:30.000Z');

/** What `open` was asked for, in order: `whole` or the range. */
let opened: (ByteRange | 'whole')[] = [];
/** The object the next request is answered with; each test may change it. */
let object: ServableObject;

function objectOf(bytes: Buffer, overrides: Partial<ServableObject> = {}): ServableObject {
  return {
    size: bytes.length,
    etag: ETAG,
    contentType: 'image/png',
    fileName: 'cat.png',
    inline: true,
    lastModified: LAST_MODIFIED,
    maxAgeSeconds: 3000,
    open: (range) => {
      opened.push(range ?? 'whole');
      const part = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1);
      // Two chunks, so a body that arrives whole was streamed, not one buffer handed over.
      const middle = Math.floor(part.length / 2);
      return Promise.resolve(Readable.from([part.subarray(0, middle), part.subarray(middle)]));
    },
    ...overrides,
  };
}

let app: FastifyInstance;
beforeAll(async () => {
  app = Fastify();
  app.setErrorHandler(handleError);
  app.get('/file', (request, reply) => serveObject(request, reply, object));
  // A route that declares HEAD itself, rather than getting Fastify's automatic one.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/file-with-head',
    handler: (request, reply) => serveObject(request, reply, object),
  });
  await app.ready();
});
afterAll(() => app.close());
beforeEach(() => {
  opened = [];
  object = objectOf(BYTES);
});

const get = (headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/file', headers });

/** Every answer under a file link, whatever its status, is inert in a browser. */
function expectSafetyHeaders(response: LightMyRequestResponse) {
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  expect(response.headers['content-security-policy']).toBe(FILE_CONTENT_SECURITY_POLICY);
  expect(response.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
  expect(response.headers['cross-origin-resource-policy']).toBe('cross-origin');
  expect(response.headers['referrer-policy']).toBe('no-referrer');
}

describe('serveObject', () => {
  it('sends the whole object with its caching and content headers', async () => {
    const response = await get();
    expect(response.statusCode).toBe(200);
    expect(response.rawPayload.equals(BYTES)).toBe(true);
    expect(opened).toEqual(['whole']);
    expect(response.headers).toMatchObject({
      'accept-ranges': 'bytes',
      etag: ETAG,
      'cache-control': 'private, max-age=3000, immutable',
      'content-type': 'image/png',
      'content-length': String(BYTES.length),
      'content-disposition': `inline; filename="cat.png"; filename*=UTF-8''cat.png`,
      'last-modified': 'Tue, 01 Dec 2026 10:20:30 GMT',
    });
    expect(response.headers['content-range']).toBeUndefined();
    expectSafetyHeaders(response);
  });

  it.each(['/file', '/file-with-head'])(
    'answers HEAD %s with the same headers and never opens the object',
    async (url) => {
      const response = await app.inject({ method: 'HEAD', url });
      expect(response.statusCode).toBe(200);
      expect(response.rawPayload.length).toBe(0);
      expect(opened).toEqual([]);
      expect(response.headers['content-length']).toBe(String(BYTES.length));
      expect(response.headers.etag).toBe(ETAG);
      expect(response.headers['content-type']).toBe('image/png');
      expect(response.headers['content-disposition']).toMatch(/^inline; /);
      expectSafetyHeaders(response);
    },
  );

  it('keeps its lengths over a real socket, where Node writes the headers itself', async () => {
    const server = Fastify();
    server.get('/file', (request, reply) => serveObject(request, reply, object));
    const address = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const head = await fetch(`${address}/file`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(BYTES.length));
      const part = await fetch(`${address}/file`, { headers: { range: 'bytes=-8' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-length')).toBe('8');
      expect(Buffer.from(await part.arrayBuffer()).equals(BYTES.subarray(100))).toBe(true);
      const whole = await fetch(`${address}/file`);
      expect(Buffer.from(await whole.arrayBuffer()).equals(BYTES)).toBe(true);
      expect(opened).toEqual([{ start: 100, end: 107 }, 'whole']);
    } finally {
      await server.close();
    }
  });

  it('ignores Range on HEAD (range handling is defined for GET only)', async () => {
    const response = await app.inject({ method: 'HEAD', url: '/file', headers: { range: 'bytes=0-9' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(BYTES.length));
    expect(opened).toEqual([]);
  });

  it.each([
    ['bytes=0-9', 0, 9],
    ['bytes=10-19', 10, 19],
    ['bytes=100-', 100, 107],
    ['bytes=100-5000', 100, 107],
    ['bytes=107-107', 107, 107],
    ['bytes=-8', 100, 107],
    ['bytes=-1000', 0, 107],
    ['BYTES=5-6', 5, 6],
    ['bytes=5-6,', 5, 6],
    [`bytes=0-${'9'.repeat(400)}`, 0, 107],
  ])('answers %s with 206 and exactly those bytes', async (range, start, end) => {
    const response = await get({ range });
    expect(response.statusCode).toBe(206);
    expect(response.headers['content-range']).toBe(`bytes ${start}-${end}/${BYTES.length}`);
    expect(response.headers['content-length']).toBe(String(end - start + 1));
    expect(response.rawPayload.equals(BYTES.subarray(start, end + 1))).toBe(true);
    expect(opened).toEqual([{ start, end }]);
    expect(response.headers['content-type']).toBe('image/png');
    expect(response.headers['cache-control']).toBe('private, max-age=3000, immutable');
    expectSafetyHeaders(response);
  });

  it.each(['bytes=108-', 'bytes=108-200', 'bytes=5000-', 'bytes=-0', `bytes=${'9'.repeat(400)}-`])(
    'answers %s, which starts past the end, with 416 and the size, opening nothing',
    async (range) => {
      const response = await get({ range });
      expect(response.statusCode).toBe(416);
      expect(response.headers['content-range']).toBe(`bytes */${BYTES.length}`);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 416, code: 'range_not_satisfiable' });
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['content-disposition']).toBeUndefined();
      expect(opened).toEqual([]);
      expectSafetyHeaders(response);
    },
  );

  it.each([
    'bytes=abc',
    'bytes=5-1',
    'bytes=',
    'bytes=-',
    'bytes=1-2-3',
    'bytes=--5',
    'bytes=+1-2',
    'bytes=1.5-2',
    'items=0-9',
    'bytes 0-9',
    '0-9',
    '',
  ])('ignores the malformed Range %j and sends the whole object', async (range) => {
    const response = await get({ range });
    expect(response.statusCode).toBe(200);
    expect(response.rawPayload.equals(BYTES)).toBe(true);
    expect(response.headers['content-range']).toBeUndefined();
    expect(opened).toEqual(['whole']);
  });

  it('answers several ranges with the whole object (200), even when one is unsatisfiable', async () => {
    for (const range of ['bytes=0-1,5-6', 'bytes=0-1, -3', 'bytes=0-1,500-600']) {
      opened = [];
      const response = await get({ range });
      expect(response.statusCode, range).toBe(200);
      expect(response.rawPayload.equals(BYTES)).toBe(true);
      expect(opened).toEqual(['whole']);
    }
  });

  it('answers If-None-Match with 304 and no body when any tag matches weakly, or for *', async () => {
    for (const ifNoneMatch of [ETAG, `W/${ETAG}`, `"other", ${ETAG}`, `"a",W/${ETAG} , "b"`, '*']) {
      const response = await get({ 'if-none-match': ifNoneMatch, range: 'bytes=0-1' });
      expect(response.statusCode, ifNoneMatch).toBe(304);
      expect(response.rawPayload.length).toBe(0);
      expect(response.headers.etag).toBe(ETAG);
      expect(response.headers['cache-control']).toBe('private, max-age=3000, immutable');
      expectSafetyHeaders(response);
    }
    const head = await app.inject({ method: 'HEAD', url: '/file', headers: { 'if-none-match': ETAG } });
    expect(head.statusCode).toBe(304);
    expect(opened).toEqual([]);
  });

  it('sends the object when If-None-Match names other tags', async () => {
    const response = await get({ 'if-none-match': '"other", W/"3f8c0d2b5f1e4a6c"' });
    expect(response.statusCode).toBe(200);
    expect(opened).toEqual(['whole']);
  });

  it('answers If-Modified-Since with 304 only without If-None-Match', async () => {
    expect((await get({ 'if-modified-since': LAST_MODIFIED.toUTCString() })).statusCode).toBe(304);
    expect((await get({ 'if-modified-since': 'Tue, 01 Dec 2026 10:20:29 GMT' })).statusCode).toBe(200);
    expect((await get({ 'if-modified-since': 'not a date' })).statusCode).toBe(200);
    const both = await get({ 'if-modified-since': LAST_MODIFIED.toUTCString(), 'if-none-match': '"other"' });
    expect(both.statusCode).toBe(200);
  });

  it('honours Range under If-Range only when it matches strongly (tag) or exactly (date)', async () => {
    const honoured = await get({ range: 'bytes=0-3', 'if-range': ETAG });
    expect(honoured.statusCode).toBe(206);
    expect(honoured.rawPayload.toString()).toBe('0123');
    expect((await get({ range: 'bytes=0-3', 'if-range': LAST_MODIFIED.toUTCString() })).statusCode).toBe(206);
    for (const ifRange of ['"other"', `W/${ETAG}`, 'Tue, 01 Dec 2026 10:20:31 GMT', 'garbage']) {
      opened = [];
      const response = await get({ range: 'bytes=0-3', 'if-range': ifRange });
      expect(response.statusCode, ifRange).toBe(200);
      expect(response.rawPayload.equals(BYTES)).toBe(true);
      expect(opened).toEqual(['whole']);
    }
  });

  it('sends an empty object as an empty 200; a range in it is unsatisfiable, a suffix gets the empty whole', async () => {
    object = objectOf(Buffer.alloc(0));
    const whole = await get();
    expect(whole.statusCode).toBe(200);
    expect(whole.headers['content-length']).toBe('0');
    expect(whole.rawPayload.length).toBe(0);
    for (const range of ['bytes=0-', 'bytes=0-0', 'bytes=-0']) {
      const response = await get({ range });
      expect(response.statusCode, range).toBe(416);
      expect(response.headers['content-range']).toBe('bytes */0');
    }
    const suffix = await get({ range: 'bytes=-5' });
    expect(suffix.statusCode).toBe(200);
    expect(suffix.rawPayload.length).toBe(0);
    expect(opened).toEqual([]);
  });

  it('says attachment for what must be saved, inline for what may be shown', async () => {
    object = objectOf(BYTES, { inline: false, fileName: 'page.html', contentType: 'text/html' });
    const response = await get();
    expect(response.headers['content-disposition']).toBe(
      `attachment; filename="page.html"; filename*=UTF-8''page.html`,
    );
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expectSafetyHeaders(response);
  });

  it('answers an object that cannot be opened with the error alone, uncached and not as a file', async () => {
    object = objectOf(BYTES, { open: () => Promise.reject(notFound('attachment')) });
    for (const headers of [{}, { range: 'bytes=0-9' }] as Record<string, string>[]) {
      const response = await get(headers);
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'not_found' });
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers.etag).toBeUndefined();
      expect(response.headers['content-disposition']).toBeUndefined();
      expect(response.headers['content-range']).toBeUndefined();
      expectSafetyHeaders(response);
    }
  });

  it('adds UTF-8 to text without a charset, keeps a given one, and sends a malformed type as octet-stream', async () => {
    const typeOf = async (contentType: string) => {
      object = objectOf(BYTES, { contentType });
      return (await get()).headers['content-type'];
    };
    expect(await typeOf('text/plain')).toBe('text/plain; charset=utf-8');
    expect(await typeOf('text/plain; charset=iso-8859-1')).toBe('text/plain; charset=iso-8859-1');
    expect(await typeOf('application/pdf')).toBe('application/pdf');
    expect(await typeOf('not a type')).toBe('application/octet-stream');
    expect(await typeOf('text/html\r\nx-evil: 1')).toBe('application/octet-stream');
    expect(await typeOf('')).toBe('application/octet-stream');
  });
});

describe('contentDisposition', () => {
  /** The two names a header carries: the ASCII `filename` and the decoded `filename*`. */
  function namesOf(header: string) {
    const match =
      /^(inline|attachment); filename="([^"\\]*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]*)$/.exec(
        header,
      );
    expect(match, header).not.toBeNull();
    return { ascii: match?.[2] ?? '', utf8: decodeURIComponent(match?.[3] ?? '') };
  }

  it('keeps a plain name as it is', () => {
    expect(contentDisposition('report 2026.pdf', false)).toBe(
      `attachment; filename="report 2026.pdf"; filename*=UTF-8''report%202026.pdf`,
    );
  });

  it('replaces quotes and backslashes in the ASCII name, and path separators in both', () => {
    const names = namesOf(contentDisposition('..\\..\\evil "quoted"/../x.txt', true));
    expect(names.ascii).toBe('.._.._evil _quoted_.._x.txt');
    expect(names.utf8).toBe('.._.._evil "quoted"_.._x.txt');
    expect(names.utf8).not.toMatch(/[/\\]/);
  });

  it('drops control characters and direction overrides, CR and LF included', () => {
    const header = contentDisposition('a\r\nSet-Cookie: x\u0000\u0007b\u202egnp.exe\u0085', false);
    expect(header).toMatch(/^[\x20-\x7e]*$/);
    expect(namesOf(header)).toEqual({ ascii: 'aSet-Cookie: xbgnp.exe', utf8: 'aSet-Cookie: xbgnp.exe' });
  });

  it('carries non-ASCII names in filename* and an ASCII stand-in in filename', () => {
    expect(namesOf(contentDisposition('café.txt', true))).toEqual({ ascii: 'cafe.txt', utf8: 'café.txt' });
    expect(namesOf(contentDisposition('日本.txt', true))).toEqual({ ascii: '_.txt', utf8: '日本.txt' });
    expect(namesOf(contentDisposition('100% (final)*.txt', true))).toEqual({
      ascii: '100_ (final)*.txt',
      utf8: '100% (final)*.txt',
    });
    // An unpaired surrogate cannot be percent-encoded: it becomes U+FFFD rather than a 500.
    expect(namesOf(contentDisposition('x\ud800.txt', true)).utf8).toBe('x\ufffd.txt');
  });

  it('bounds a long name, keeping its extension and whole characters', () => {
    const long = namesOf(contentDisposition(`${'a'.repeat(1000)}.pdf`, false));
    expect(long.utf8).toBe(`${'a'.repeat(146)}.pdf`);
    expect(long.ascii).toBe(long.utf8);
    const wide = contentDisposition(`${'日本'.repeat(500)}.txt`, true);
    expect(wide.length).toBeLessThan(1500);
    expect(Array.from(namesOf(wide).utf8)).toHaveLength(150);
    const emoji = namesOf(contentDisposition('👩🏽‍💻'.repeat(100), true)).utf8;
    // Four code points each: 37 whole ones fit in 150, and no half of one.
    expect(emoji).toBe('👩🏽‍💻'.repeat(37));
    expect(namesOf(contentDisposition(`x.${'e'.repeat(1000)}`, true)).utf8).toBe(`x.${'e'.repeat(148)}`);
  });

  it('names something when nothing usable is left', () => {
    for (const name of ['', '   ', '\u0000\u0001', '..', '.']) {
      expect(namesOf(contentDisposition(name, false)).utf8, JSON.stringify(name)).toBe('download');
    }
  });
});
