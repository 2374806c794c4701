/** A small typed event emitter that runs in browsers and Node alike (no `node:events`). */
export class Emitter<Events extends Record<string, unknown[]>> {
  readonly #listeners = new Map<keyof Events, Set<(...args: unknown[]) => void>>();

  /** Calls `listener` on every `name`; returns a function that removes it. */
  on<K extends keyof Events>(name: K, listener: (...args: Events[K]) => void): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) this.#listeners.set(name, (set = new Set()));
    set.add(listener as unknown as (...args: unknown[]) => void);
    return () => this.off(name, listener);
  }

  off<K extends keyof Events>(name: K, listener: (...args: Events[K]) => void): void {
    this.#listeners.get(name)?.delete(listener as unknown as (...args: unknown[]) => void);
  }

  protected emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        // A listener's bug must not stop the others, nor the client's own state keeping.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
