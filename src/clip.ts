/**
 * `value` cut to at most `max` characters (code points, as `maxLength` counts them), an ellipsis marking
 * the cut: for texts an answer shows that came from outside (a peer's error), so it keeps its bound.
 */
export function clip(value: string, max: number): string {
  if (value.length <= max) return value;
  const points = Array.from(value);
  return points.length <= max ? value : `${points.slice(0, max - 1).join('')}…`;
}
