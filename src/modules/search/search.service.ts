import type { Orm } from '../../db/client.ts';
import { inTenantAsUser } from '../../db/tenant-scope.ts';
import type { TenantContext } from '../../context.ts';
import { cursorNumber, cursorUuid, decodeCursor, encodeCursor } from '../../http/pagination.ts';
import { clip } from '../../clip.ts';
import { rolesAllowedTo } from '../access/permissions.ts';
import { loadMessageViews } from '../messages/message-views.ts';
import type { FileLinker } from '../attachments/file-linker.ts';
import { findMessagesByIds } from '../messages/messages.repository.ts';
import { headlines, MARK_START, MARK_STOP, searchMessages, type SearchHit } from './search.repository.ts';

/** Scripts written without spaces between words, where words cannot be told apart: search substrings. */
const UNSPACED_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}]/u;
const CONTEXT_CHARS = 40;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char,
  );

/** The term to find as a substring, when the query is in a script without spaces; else null. */
function substringTermOf(query: string): string | null {
  const term = query.replace(/"/g, '').trim();
  // At least two characters (code points): a single one would match far too much.
  return UNSPACED_SCRIPT.test(term) && Array.from(term).length >= 2 ? term : null;
}

/**
 * The most characters of ts_headline's snippet kept: its 35 words may each be long (a URL, a word of
 * 10,000 letters); what is cut is replaced by `…`, and a mark left open is closed.
 */
const MAX_HEADLINE_CHARS = 1000;
/** The longest highlight: every kept character escaped (`&quot;`, 6) or a mark (`</mark>`, 7). */
export const MAX_HIGHLIGHT_LENGTH = MAX_HEADLINE_CHARS * 7 + 8;

function clipHeadline(headline: string): string {
  const clipped = clip(headline, MAX_HEADLINE_CHARS);
  return clipped.lastIndexOf(MARK_START) > clipped.lastIndexOf(MARK_STOP)
    ? `${clipped}${MARK_STOP}`
    : clipped;
}

/** An HTML-safe snippet with the match in <mark>: ts_headline's for words, a window around a substring. */
function highlightOf(text: string, headline: string | undefined, substring: string | null): string {
  if (headline?.includes(MARK_START)) {
    return escapeHtml(clipHeadline(headline))
      .replaceAll(MARK_START, '<mark>')
      .replaceAll(MARK_STOP, '</mark>');
  }
  // Found in the text itself, ignoring case: lower-casing can change lengths ('İ'), so indexes into a
  // lower-cased copy would mark the wrong characters.
  const match = substring === null ? null : new RegExp(escapeRegExp(substring), 'iu').exec(text);
  if (match === null)
    return escapeHtml(clip(headline ?? text.slice(0, CONTEXT_CHARS * 2), MAX_HEADLINE_CHARS));
  const at = match.index;
  const found = match[0];
  const start = Math.max(0, at - CONTEXT_CHARS);
  const end = Math.min(text.length, at + found.length + CONTEXT_CHARS);
  return [
    start > 0 ? '…' : '',
    escapeHtml(text.slice(start, at)),
    `<mark>${escapeHtml(found)}</mark>`,
    escapeHtml(text.slice(at + found.length, end)),
    end < text.length ? '…' : '',
  ].join('');
}

/** The roles that may read a conversation, from the one permission table: search only reads theirs. */
const READ_ROLES = rolesAllowedTo('read');

/** Message search, across the conversations the caller is a member of (with a role that may read). */
export function createSearchService({ orm, links }: { orm: Orm; links: FileLinker }) {
  return {
    searchMessages(
      ctx: TenantContext,
      query: {
        q: string;
        conversation_id?: string;
        sender_id?: string;
        since?: string;
        until?: string;
        has_attachments?: boolean;
        cursor?: string;
        limit?: number;
      },
    ) {
      return inTenantAsUser(orm, ctx, async (scope, userId) => {
        const limit = query.limit ?? 20;
        const key = query.cursor === undefined ? undefined : decodeCursor(query.cursor, 2);
        const after: SearchHit | undefined = key && { rank: cursorNumber(key[0]), id: cursorUuid(key[1]) };
        const substring = substringTermOf(query.q);
        const hits = await searchMessages(scope, userId, {
          text: query.q,
          substringPattern:
            substring === null ? null : `%${substring.replace(/[\\%_]/g, (char) => `\\${char}`)}%`,
          conversationId: query.conversation_id,
          senderId: query.sender_id,
          since: query.since,
          until: query.until,
          hasAttachments: query.has_attachments,
          after,
          limit: limit + 1,
          readRoles: READ_ROLES,
        });
        const page = hits.slice(0, limit);
        const ids = page.map((hit) => hit.id);
        const byId = new Map((await findMessagesByIds(scope, ids)).map((row) => [row.id, row]));
        const ordered = ids.flatMap((id) => byId.get(id) ?? []);
        const views = await loadMessageViews(scope, userId, ordered, links);
        const snippets = await headlines(scope, ids, query.q);
        const last = page.at(-1);
        return {
          data: views.map((message, index) => ({
            message,
            highlight: highlightOf(ordered[index]?.text ?? '', snippets.get(message.id), substring),
          })),
          next_cursor: hits.length > limit && last ? encodeCursor([String(last.rank), last.id]) : null,
        };
      });
    },
  };
}

export type SearchService = ReturnType<typeof createSearchService>;
