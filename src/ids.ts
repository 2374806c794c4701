import { v7 } from 'uuid';

/** A new time-ordered UUIDv7, for every id Parley creates (so ids sort by creation and index well). */
export function newId(): string {
  return v7();
}
