// The input rules that hold for every field of every request, over HTTP and over the socket, before any
// route's own schema is looked at: JSON no deeper than a person's data ever is, and text PostgreSQL can store.

/**
 * Deepest nesting of arrays and objects a JSON body or frame may have. Every request shape of the API is at
 * most four levels deep and tenant `metadata` gets the rest; deeper input only exists to exhaust a
 * recursive serializer, hasher or the database's jsonb parser.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * True when the JSON text nests arrays and objects deeper than `maxDepth`. One pass over the characters,
 * skipping strings, before anything parses it: a parser or a recursive walk never sees the deep input.
 */
export function isJsonDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let isInString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (isInString) {
      if (char === 0x5c /* \ */) i++;
      else if (char === 0x22 /* " */) isInString = false;
    } else if (char === 0x22) {
      isInString = true;
    } else if (char === 0x5b /* [ */ || char === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (char === 0x5d /* ] */ || char === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/**
 * True when PostgreSQL can store the string, as text or inside jsonb: no NUL character, and well-formed
 * UTF-16 (a lone surrogate, which JSON's `\ud800` escape can produce, has no UTF-8 form).
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
/** A key that is not storable, made printable for the pointer that names it. */
const printable = (text: string) => text.toWellFormed().replaceAll('\u0000', '\ufffd');

/**
 * The JSON pointer (relative to `value`, "" for the value itself) of the first string or object key that
 * is not storable text, or null when every one is. Iterative, so no input depth can overflow the stack.
 */
export function findUnstorableText(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [current, pointer] = next;
    if (typeof current === 'string') {
      if (!isStorableText(current)) return pointer;
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push([current[i], `${pointer}/${i}`]);
    } else if (typeof current === 'object' && current !== null) {
      for (const [key, child] of Object.entries(current)) {
        if (!isStorableText(key)) return `${pointer}/${escapePointer(printable(key))}`;
        stack.push([child, `${pointer}/${escapePointer(key)}`]);
      }
    }
  }
  return null;
}

/** What the problem document says of a field that is not storable text. */
export const UNSTORABLE_TEXT_MESSAGE = 'must be well-formed Unicode text without NUL characters';
