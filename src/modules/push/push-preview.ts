/** The most characters (code points) of a message's text a push or `notification.requested` carries. */
export const PREVIEW_MAX_CHARS = 200;

/**
 * The start of a message's text for a notification: whole up to PREVIEW_MAX_CHARS code points, else cut
 * with an ellipsis (never inside a surrogate pair). A push message holds about 4 KB encrypted.
 */
export function previewOf(text: string): string {
  const chars = Array.from(text);
  return chars.length <= PREVIEW_MAX_CHARS ? text : `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join('')}…`;
}
