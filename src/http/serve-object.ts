import { Readable } from 'node:stream';
import { contentDisposition } from '../media/file-names.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../errors.ts';
import type { ByteRange } from '../storage/object-storage.ts';

/** One stored file as a GET or HEAD answers it: what the headers say and how to read its bytes. */
export interface ServableObject {
  /** Bytes in the whole object. */
  size: number;
  /** A strong entity tag with its quotes (`"<sha256>"`): the same bytes always have the same tag. */
  etag: string;
  /** What the bytes are, as detected on upload; anything not shaped like a media type is sent as octet-stream. */
  contentType: string;
  /** The name the uploader gave, any characters: it is cleaned and bounded here. */
  fileName: string;
  /** Shown in the browser (`inline`) or saved (`attachment`); anything a browser could run must be false. */
  inline: boolean;
  lastModified?: Date;
  /** How long a client may reuse the answer: at most what is left of the link. */
  maxAgeSeconds: number;
  /** The bytes, or the inclusive range `start..end` of them; never called for HEAD, 304, 416 or an empty object. */
  open: (range?: ByteRange) => Promise<Readable>;
}

/**
 * The policy of every file response: nothing loads, nothing runs, and the document is sandboxed to an opaque
 * origin, so an HTML or SVG file opened through its link cannot script Parley's origin or read its storage.
 * Images are unaffected where they matter: an `<img>` on the chat client's page follows that page's policy.
 */
export const FILE_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox";

/**
 * The headers every answer under a file link carries, errors included (a 403 or 410 before the object is
 * known): set first by the route, before checking the link. `no-store` stands until `serveObject` replaces
 * it on a success, so no cache keeps a refusal under a URL that may later work.
 */
export function setFileSafetyHeaders(reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('content-security-policy', FILE_CONTENT_SECURITY_POLICY);
  // Chat clients on other origins show these images and play these videos; the link, not a cookie, is the
  // credential, so a cross-origin read gains no one anything they did not already hold.
  reply.header('cross-origin-resource-policy', 'cross-origin');
  // The URL is the credential: a link inside an opened file must not hand it to the next site.
  reply.header('referrer-policy', 'no-referrer');
  reply.header('cache-control', 'no-store');
}

/**
 * Answers a GET or HEAD for one stored object (RFC 9110): `If-None-Match` and `If-Modified-Since` (304),
 * one `Range` (206, or 416 when it starts past the end), `If-Range`; several ranges or a malformed `Range`
 * get the whole object (200). The body is streamed from `open`, never held in memory.
 */
export async function serveObject(
  request: FastifyRequest,
  reply: FastifyReply,
  object: ServableObject,
): Promise<FastifyReply> {
  setFileSafetyHeaders(reply);
  reply.header('accept-ranges', 'bytes');
  if (isNotModified(request, object)) {
    setCachingHeaders(reply, object);
    return reply.code(304).send();
  }

  const range = request.method === 'GET' ? requestedRange(request, object) : { kind: 'whole' as const };
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${object.size}`);
    // The `no-store` stands: caches key on the URL, not the Range, and would replay a 416 for a full GET.
    return sendProblem(
      reply,
      'range_not_satisfiable',
      `the requested range is not within the ${object.size} bytes of this file`,
    );
  }

  // Opened before any header about the bytes is set: an object that cannot be read (gone from storage)
  // fails into the error handler's problem document, `no-store` and with no ETag, Range or Disposition.
  const part = range.kind === 'part' ? { start: range.start, end: range.end } : undefined;
  const body = await bodyOf(request, object, part);
  setCachingHeaders(reply, object);
  reply.header('content-type', contentTypeOf(object.contentType));
  reply.header('content-disposition', contentDisposition(object.fileName, object.inline));
  if (part !== undefined) {
    reply.code(206);
    reply.header('content-range', `bytes ${part.start}-${part.end}/${object.size}`);
    reply.header('content-length', String(part.end - part.start + 1));
  } else {
    reply.code(200);
    reply.header('content-length', String(object.size));
  }
  return reply.send(body);
}

/** The validators and freshness of a success or a 304: what lets a client reuse the bytes it has. */
function setCachingHeaders(reply: FastifyReply, object: ServableObject): void {
  reply.header('etag', object.etag);
  // `private`: the URL is a bearer credential to a tenant's file, so no shared cache (CDN, proxy) may keep
  // the bytes beyond the link's life; `immutable`: a link names one rendition, whose bytes never change.
  reply.header(
    'cache-control',
    `private, max-age=${Math.max(0, Math.floor(object.maxAgeSeconds))}, immutable`,
  );
  if (object.lastModified !== undefined) reply.header('last-modified', object.lastModified.toUTCString());
}

/** What to send: nothing to read for HEAD or an empty object, else the stream `open` gives. */
async function bodyOf(
  request: FastifyRequest,
  object: ServableObject,
  part: ByteRange | undefined,
): Promise<Readable | string> {
  // An empty stream for HEAD, not nothing: Fastify's automatic HEAD route sets `content-length: 0` for an
  // absent body and keeps ours for a stream, which it drains.
  if (request.method === 'HEAD') return Readable.from([]);
  if (object.size === 0) return '';
  return object.open(part);
}

type RangeAnswer =
  { kind: 'whole' } | { kind: 'part'; start: number; end: number } | { kind: 'unsatisfiable' };

/** What `Range` (and `If-Range`) ask of this object; only GET has ranges (RFC 9110, 14.2). */
function requestedRange(request: FastifyRequest, object: ServableObject): RangeAnswer {
  const header = request.headers.range;
  if (header === undefined) return { kind: 'whole' };
  const ifRange: unknown = request.headers['if-range'];
  if (ifRange !== undefined && (typeof ifRange !== 'string' || !ifRangeMatches(ifRange, object))) {
    return { kind: 'whole' };
  }
  return parseRange(header, object.size);
}

/**
 * One `bytes=` range against `size`. Malformed headers, other units and several ranges are ignored (the
 * whole object, which RFC 9110 allows for any Range); a range starting at or past the end is unsatisfiable;
 * so is every `first-last` of an empty object. A suffix (`-n`) on an empty object is satisfiable but has no
 * byte to send, and no Content-Range can say so: the empty whole.
 */
function parseRange(header: string, size: number): RangeAnswer {
  const match = /^bytes=(.*)$/i.exec(header.trim());
  if (match === null) return { kind: 'whole' };
  const specs = (match[1] ?? '')
    .split(',')
    .map((spec) => spec.trim())
    .filter((spec) => spec !== '');
  const [spec] = specs;
  if (spec === undefined || specs.length > 1) return { kind: 'whole' };

  const suffix = /^-(\d+)$/.exec(spec);
  if (suffix !== null) {
    const length = Number(suffix[1]);
    if (length === 0) return { kind: 'unsatisfiable' };
    if (size === 0) return { kind: 'whole' };
    return { kind: 'part', start: Math.max(0, size - length), end: size - 1 };
  }
  const bounded = /^(\d+)-(\d*)$/.exec(spec);
  if (bounded === null) return { kind: 'whole' };
  const first = Number(bounded[1]);
  const last = bounded[2] === '' || bounded[2] === undefined ? Number.POSITIVE_INFINITY : Number(bounded[2]);
  if (last < first) return { kind: 'whole' };
  if (first >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', start: first, end: Math.min(last, size - 1) };
}

/** `If-None-Match` (weak comparison, `*` included) or, without it, `If-Modified-Since` (RFC 9110, 13.2.2). */
function isNotModified(request: FastifyRequest, object: ServableObject): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    const wanted = opaqueTag(object.etag);
    return entityTags(ifNoneMatch).some((tag) => opaqueTag(tag) === wanted);
  }
  const ifModifiedSince = request.headers['if-modified-since'];
  if (ifModifiedSince !== undefined && object.lastModified !== undefined) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && wholeSeconds(object.lastModified) <= since;
  }
  return false;
}

/** `If-Range`: an entity tag compared strongly (a weak one never matches), or the exact Last-Modified date. */
function ifRangeMatches(ifRange: string, object: ServableObject): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === object.etag && !object.etag.startsWith('W/');
  if (value.startsWith('W/')) return false;
  const date = Date.parse(value);
  return (
    object.lastModified !== undefined && !Number.isNaN(date) && wholeSeconds(object.lastModified) === date
  );
}

/** The entity tags of a list header, in order: `"a", W/"b"`. */
function entityTags(header: string): string[] {
  return header.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

/** The tag without its weakness marker, for the weak comparison. */
function opaqueTag(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** HTTP dates have whole seconds; a Date's milliseconds would make every comparison fail. */
function wholeSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);

/** The media type to send: octet-stream if it is not one, and an explicit UTF-8 for text without a charset. */
function contentTypeOf(contentType: string): string {
  const value = contentType.trim();
  if (!MEDIA_TYPE.test(value)) return 'application/octet-stream';
  if (/^text\//i.test(value) && !/;\s*charset=/i.test(value)) return `${value}; charset=utf-8`;
  return value;
}
