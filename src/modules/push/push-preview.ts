/** The most characters (code points) of a message's text a push or `notification.requested` carries. */
export const PREVIEW_MAX_CHARS = 200;

/**
 * The start of a message's text for a notification (its files' names when it has no text): whole up to
 * PREVIEW_MAX_CHARS code points, else cut with an ellipsis (never inside a surrogate pair). A push message holds about 4 KB encrypted.
 */
export function previewOf(text: string, attachments: readonly { name: string }[] = []): string {
  // A message of attachments alone (a photo without a caption) is previewed by its files' names.
  const shown =
    text === '' && attachments.length > 0 ? `📎 ${attachments.map((file) => file.name).join(', ')}` : text;
  const chars = Array.from(shown);
  return chars.length <= PREVIEW_MAX_CHARS ? shown : `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join('')}…`;
}
