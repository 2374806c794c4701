// What an attachment's bytes are, and how they may be served (docs/ATTACHMENTS.md, "What Parley does with
// the bytes"). The type is sniffed from the bytes; what the client claimed (its Content-Type, the file name)
// is never an input. Whether a type is shown inline is an allow-list: anything a browser could execute in
// Parley's origin (HTML, SVG, XML, JavaScript) is always a download.
import { fileTypeFromBuffer } from 'file-type';
import sharp from 'sharp';
import type { FormatEnum } from 'sharp';

/**
 * How many leading bytes sniffContentType wants: file-type's own sample size (its readme, `sampleSize`,
 * default 4100), which also leaves room for an XML prolog and comments before an `<svg` root.
 */
export const SNIFF_BYTES = 4100;

/** The type of bytes nothing recognised; always a download. */
export const OCTET_STREAM = 'application/octet-stream';

const UTF8_BOM = [0xef, 0xbb, 0xbf] as const;

/**
 * Tags that make a browser's sniffer (WHATWG MIME Sniffing, "rules for identifying an unknown MIME type")
 * render text as HTML when it starts with them. Matched case-insensitively and, to err towards HTML, without
 * requiring the tag-terminating byte the standard does (`<header>` counts as `<head`).
 */
const HTML_START_TAGS = [
  'html',
  'head',
  'body',
  'script',
  'iframe',
  'h1',
  'div',
  'font',
  'table',
  'a',
  'style',
  'title',
  'b',
  'br',
  'p',
] as const;

/**
 * The sniffed MIME type of a file from its first bytes (at most SNIFF_BYTES are looked at by file-type; pass
 * the whole file when it is shorter). Binary formats come from file-type; text is told apart here as HTML,
 * SVG, XML or plain text; anything else is application/octet-stream. Never throws.
 */
export async function sniffContentType(head: Uint8Array): Promise<string> {
  if (head.length === 0) return OCTET_STREAM;
  const sample = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  let detected: string | undefined;
  try {
    detected = (await fileTypeFromBuffer(sample))?.mime;
  } catch {
    // A detector tripping over hostile bytes is no reason to fail an upload: treat it as unrecognised.
    detected = undefined;
  }
  if (detected === undefined) return classifyText(sample) ?? OCTET_STREAM;
  if (detected === 'application/xml' || detected === 'text/xml') {
    // file-type says XML for anything starting with `<?xml`; an SVG or XHTML document is one too, and must
    // be named as such (both are served as downloads, but the name matters to clients and logs).
    const text = classifyText(sample);
    return text === 'image/svg+xml' || text === 'text/html' ? text : 'application/xml';
  }
  return detected;
}

/**
 * text/html, image/svg+xml, application/xml or text/plain when the bytes are UTF-8 text (no NUL, no control
 * character but tab, LF, FF and CR); undefined when they are not text.
 */
function classifyText(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    // `stream: true` lets a multi-byte character cut off by the end of the sample pass: the sample is
    // usually a prefix of the file, not all of it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: true });
  } catch {
    return undefined;
  }
  if (!isPrintableText(text)) return undefined;
  const start =
    bytes[0] === UTF8_BOM[0] && bytes[1] === UTF8_BOM[1] && bytes[2] === UTF8_BOM[2] ? text.slice(1) : text;
  return classifyMarkup(start.trimStart());
}

/** No C0 control character other than tab, LF, FF and CR, no DEL and no C1 control character. */
function isPrintableText(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) continue;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return false;
  }
  return true;
}

/**
 * What a text starting with markup is: skips an XML prolog, processing instructions, comments and a
 * non-HTML doctype, then looks at the first element. Text that is not markup is text/plain.
 */
function classifyMarkup(text: string): string {
  const lower = text.toLowerCase();
  const hasXmlProlog = lower.startsWith('<?xml');
  // A comment first is what the browser's sniffer takes for HTML; an XML document may start with one too.
  const startsWithComment = lower.startsWith('<!--');
  let position = 0;
  for (;;) {
    position = skipWhitespace(lower, position);
    if (lower.startsWith('<!doctype html', position)) return 'text/html';
    const skipped =
      skipDelimited(lower, position, '<?', '?>') ??
      skipDelimited(lower, position, '<!--', '-->') ??
      skipDelimited(lower, position, '<!doctype', '>');
    if (skipped === undefined) break;
    if (skipped === -1) {
      // The sample ends inside the prolog: what follows is unknown.
      return hasXmlProlog ? 'application/xml' : startsWithComment ? 'text/html' : 'text/plain';
    }
    position = skipped;
  }
  if (lower.startsWith('<', position)) {
    const name = /^<([a-z][a-z0-9._:-]*)/.exec(lower.slice(position, position + 64))?.[1];
    if (name !== undefined) {
      if (name === 'svg' || name.endsWith(':svg')) return 'image/svg+xml';
      if (name === 'html' || name.endsWith(':html')) return 'text/html';
      if (!hasXmlProlog && HTML_START_TAGS.some((tag) => name.startsWith(tag))) return 'text/html';
    }
  }
  if (hasXmlProlog) return 'application/xml';
  if (startsWithComment) return 'text/html';
  return 'text/plain';
}

function skipWhitespace(text: string, position: number): number {
  let at = position;
  while (at < text.length && /\s/.test(text.charAt(at))) at += 1;
  return at;
}

/**
 * Past `open…close` when the text has `open` at `position`; -1 when `close` is not in the text; undefined
 * when `open` is not there.
 */
function skipDelimited(text: string, position: number, open: string, close: string): number | undefined {
  if (!text.startsWith(open, position)) return undefined;
  const end = text.indexOf(close, position + open.length);
  return end === -1 ? -1 : end + close.length;
}

/** `type/subtype` of a Content-Type, lower-cased and without parameters. */
function essence(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * Raster images a browser shows as an image and never runs. BMP and TIFF are left out: Parley makes no
 * thumbnail of them and browsers show them unevenly, so a download loses nothing.
 */
const INLINE_IMAGES = new Set([
  'image/jpeg',
  'image/png',
  'image/apng',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/heic',
  'image/heif',
]);

/**
 * Whether an attachment of this (sniffed) type may be served with `Content-Disposition: inline`: raster
 * images, audio, video and plain text. Everything else is a download, and explicitly anything a browser
 * could execute or that can carry script: HTML, SVG, any XML, JavaScript. PDF is a download too: browser
 * PDF viewers run (a subset of) JavaScript and follow links and forms in the document, and a download is the
 * safe default for what is not needed inline.
 */
export function isServedInline(contentType: string): boolean {
  const type = essence(contentType);
  if (type.includes('script') || type.includes('xml') || type.includes('html')) return false;
  if (INLINE_IMAGES.has(type)) return true;
  if (type === 'text/plain') return true;
  return /^(audio|video)\/[a-z0-9][a-z0-9.+-]*$/.test(type);
}

/** The sharp format whose loader reads each image type Parley would process. */
const LOADER_BY_TYPE: ReadonlyMap<string, keyof FormatEnum> = new Map([
  ['image/jpeg', 'jpeg'],
  ['image/png', 'png'],
  // An animated PNG reads as its first frame (libvips has no APNG loader); it is still processed, so its
  // metadata chunks are stripped like every other image's.
  ['image/apng', 'png'],
  ['image/gif', 'gif'],
  ['image/webp', 'webp'],
  ['image/avif', 'heif'],
  ['image/heic', 'heif'],
  ['image/heic-sequence', 'heif'],
  ['image/heif', 'heif'],
  ['image/heif-sequence', 'heif'],
]);

const HEVC_TYPES = new Set(['image/heic', 'image/heic-sequence', 'image/heif', 'image/heif-sequence']);

/**
 * Whether the libvips under sharp decodes HEIC (HEVC). Prebuilt sharp carries libheif with the AV1 decoder
 * only, and its heif loader then names `.avif` alone among its suffixes; a libvips built with an HEVC
 * decoder also names `.heic`. Detected at runtime, never assumed.
 */
export function canDecodeHeic(): boolean {
  const input = sharp.format.heif.input;
  return input.file && (input.fileSuffix ?? []).includes('.heic');
}

/**
 * Whether Parley makes thumbnails of (and strips metadata from) an attachment of this sniffed type: the
 * raster formats the installed sharp/libvips can read from a file. HEIC only where canDecodeHeic().
 */
export function isProcessableImage(contentType: string): boolean {
  const type = essence(contentType);
  const loader = LOADER_BY_TYPE.get(type);
  if (loader === undefined) return false;
  if (HEVC_TYPES.has(type) && !canDecodeHeic()) return false;
  return sharp.format[loader].input.file;
}
