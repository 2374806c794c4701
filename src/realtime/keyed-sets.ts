/**
 * Indexes of sockets (or of anything) by a key, such as a conversation, a user or an api key: a key is
 * present only while its set is non-empty, so an index never grows with keys nobody uses any more.
 */

/** Adds an item under a key. */
export function addTo<T>(index: Map<string, Set<T>>, key: string, item: T): void {
  const set = index.get(key);
  if (set === undefined) index.set(key, new Set([item]));
  else set.add(item);
}

/** Removes an item from under a key, dropping the key when it is left with no item. */
export function removeFrom<T>(index: Map<string, Set<T>>, key: string, item: T): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(item);
  if (set.size === 0) index.delete(key);
}
