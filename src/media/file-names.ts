// File names as Parley offers them to browsers and S3 (Content-Disposition), and the characters a name may
// not hold: one home for both, used by the file route (src/http/serve-object.ts), presigned S3 downloads and
// the check of an uploaded file's name.

/** Longest file name put in Content-Disposition, in code points (the extension kept). */
const MAX_FILE_NAME_CODE_POINTS = 150;
/** The longest `.ext` kept whole when a name is shortened. */
const MAX_EXTENSION_CODE_POINTS = 16;

/** The longest file name kept, in characters (code points, as JSON Schema counts them). */
export const MAX_FILE_NAME_LENGTH = 255;

/**
 * Content-Disposition for a name of any characters (RFC 6266): `filename*` carries it in UTF-8
 * (RFC 8187), `filename` an ASCII stand-in for old clients. Control and bidirectional-override characters
 * and path separators are dropped or replaced, and the name is bounded, its extension kept.
 */
export function contentDisposition(fileName: string, inline: boolean): string {
  const name = boundedFileName(cleanFileName(fileName));
  const ascii = asciiFileName(name);
  return `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${rfc8187Encode(name)}`;
}

/** Control characters, and the direction overrides that make `exe.txt` display as `txt.exe`. */
const UNSAFE_NAME_CHARACTERS = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function cleanFileName(fileName: string): string {
  const cleaned = fileName
    .toWellFormed()
    .normalize('NFC')
    .replace(UNSAFE_NAME_CHARACTERS, '')
    .replace(/[/\\]/g, '_')
    .trim();
  return cleaned === '' || /^\.+$/.test(cleaned) ? 'download' : cleaned;
}

/** At most MAX_FILE_NAME_CODE_POINTS, cut between graphemes, the extension kept. */
function boundedFileName(name: string): string {
  if (codePointCount(name) <= MAX_FILE_NAME_CODE_POINTS) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const keptExtension = codePointCount(extension) <= MAX_EXTENSION_CODE_POINTS ? extension : '';
  const stem = keptExtension === '' ? name : name.slice(0, dot);
  const room = MAX_FILE_NAME_CODE_POINTS - codePointCount(keptExtension);
  let kept = '';
  let used = 0;
  for (const { segment } of new Intl.Segmenter('und', { granularity: 'grapheme' }).segment(stem)) {
    const length = codePointCount(segment);
    if (used + length > room) break;
    kept += segment;
    used += length;
  }
  return `${kept === '' ? 'download' : kept}${keptExtension}`;
}

/** Code points, not UTF-16 units: what a name's length means to its reader (the text is well-formed here). */
function codePointCount(text: string): number {
  return Array.from(text).length;
}

/** The name in printable ASCII with no quote, backslash or percent sign: accents dropped, the rest `_`. */
function asciiFileName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]|["\\%]/g, '_')
    .replace(/_{2,}/g, '_');
}

/** RFC 8187 value-chars: percent-encoded UTF-8 of everything but attr-char. */
function rfc8187Encode(value: string): string {
  return encodeURIComponent(value).replace(
    /['()*]/g,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Whether a name holds a control or direction-override character (an upload with one is refused). */
export function hasUnsafeNameCharacters(name: string): boolean {
  return new RegExp(UNSAFE_NAME_CHARACTERS.source, 'u').test(name);
}
