/** Characters a user id may contain; an @mention is `@` followed by a run of them. */
const MENTION = /(?:^|[^A-Za-z0-9_.@:-])@([A-Za-z0-9_.@:-]{1,128})/g;
/** Punctuation that may end a sentence right after a mention (`ask @bob.`), tried off the end. */
const TRAILING_PUNCTUATION = /[.:@-]+$/;

/**
 * The user ids a text may mention: every `@token`, and the token without trailing sentence punctuation.
 * Only those that are members of the conversation become the message's mentions.
 */
export function mentionCandidatesOf(text: string): string[] {
  const candidates = new Set<string>();
  for (const match of text.matchAll(MENTION)) {
    const token = match[1];
    if (token === undefined) continue;
    candidates.add(token);
    const trimmed = token.replace(TRAILING_PUNCTUATION, '');
    if (trimmed.length > 0) candidates.add(trimmed);
  }
  return [...candidates];
}

/**
 * The mentions of a text among `members`, in order of first appearance, each once: the first `max`
 * (MAX_MENTIONS); later ones stay plain text.
 */
export function mentionsOf(text: string, members: Set<string>, max: number): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(MENTION)) {
    if (found.size === max) break;
    const token = match[1] ?? '';
    const id = members.has(token) ? token : token.replace(TRAILING_PUNCTUATION, '');
    if (members.has(id)) found.add(id);
  }
  return [...found];
}

const SHORT_NAME = /^:[a-z0-9_+-]{1,64}:$/;
const PICTOGRAPHIC = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** A reaction is one emoji grapheme (👍, 👩🏽‍💻, 🇫🇷, 1️⃣) or a `:short_name:` of 1–64 characters. */
export function isReactionEmoji(value: string): boolean {
  if (SHORT_NAME.test(value)) return true;
  if (value.length > 64) return false;
  const segments = graphemes.segment(value)[Symbol.iterator]();
  const isOneGrapheme = !segments.next().done && segments.next().done === true;
  return isOneGrapheme && PICTOGRAPHIC.test(value);
}
