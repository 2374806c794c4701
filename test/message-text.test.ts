import { describe, expect, it } from 'vitest';
import { isReactionEmoji, mentionCandidatesOf, mentionsOf } from '../src/modules/messages/message-text.ts';

describe('mentions', () => {
  const members = new Set(['bob', 'carol.smith', 'dave@acme', 'erin']);

  it('finds @user_id of members, once each, in order', () => {
    expect(mentionsOf('hi @bob and @carol.smith, @bob again', members, 100)).toEqual(['bob', 'carol.smith']);
    expect(mentionsOf('@dave@acme: ping', members, 100)).toEqual(['dave@acme']);
    expect(mentionsOf('ask @erin.', members, 100)).toEqual(['erin']);
  });

  it('ignores non-members, e-mail addresses and bare @', () => {
    expect(mentionsOf('mail bob@example.com or @stranger or @ alone', members, 100)).toEqual([]);
    expect(mentionCandidatesOf('x@bob')).toEqual([]);
  });

  it('keeps the first `max` mentioned members; later @names stay text', () => {
    expect(mentionsOf('@erin @bob @erin @carol.smith', members, 2)).toEqual(['erin', 'bob']);
  });
});

describe('reaction emoji', () => {
  it('accepts one emoji grapheme or a :short_name:', () => {
    for (const emoji of ['👍', '👩🏽‍💻', '🇫🇷', '1️⃣', '❤️', ':thumbs_up:', ':+1:', `:${'a'.repeat(64)}:`]) {
      expect(isReactionEmoji(emoji), emoji).toBe(true);
    }
  });

  it('refuses text, several emoji and malformed short names', () => {
    for (const value of [
      'a',
      '1',
      '👍👍',
      '👍 ',
      'ok',
      '::',
      ':Thumbs:',
      `:${'a'.repeat(65)}:`,
      ':a b:',
      '',
    ]) {
      expect(isReactionEmoji(value), value).toBe(false);
    }
  });
});
