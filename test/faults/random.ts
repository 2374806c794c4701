/**
 * Seeded randomness for the fault-injection suite, so a failing run can be replayed with its seed. Each
 * actor (a sender, a reader, the fault schedule) draws from a stream of its own, derived from the seed and
 * its name: adding an actor does not change what the others draw.
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A stream of its own for `name`, derived from this one's seed. */
  static forActor(seed: number, name: string): Random {
    let hash = seed >>> 0;
    for (let index = 0; index < name.length; index++) {
      hash = Math.imul(hash ^ name.charCodeAt(index), 0x01000193) >>> 0;
    }
    return new Random(hash ^ 0x9e3779b9);
  }

  /** A float in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** The items in a random order. */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = Math.floor(this.next() * (index + 1));
      [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
    }
    return copy;
  }
}

/** A fresh seed for a run that was given none. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
