import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/** Files that replace a module with `vi.mock`: they need a module registry of their own. */
const MOCKING_FILES = ['test/webhook-sender.test.ts'];
const ALL_FILES = ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
    // Each file opens its own database (an in-memory PGlite, or a fresh PostgreSQL database), so files run
    // in parallel. Vitest's default is one less than the cores, which on the 2-core machines this runs on
    // (CI's too) was one file at a time; most of a file's time is spent waiting (on timers, sockets, child
    // processes), and two at a time took the embedded run there from about 9 to under 5 minutes. Three at a
    // time was slower (483 s against 414 s for the embedded run on 2026-12-07): the suite is CPU-bound.
    pool: 'forks',
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // `expect.poll` waits for a condition (a browser page updating, a socket connecting): the default second
    // was too short for a demo sign-in while the two-core CI machine ran the rest of the suite. A wait that
    // succeeds ends at once; only a failure takes this long.
    expect: { poll: { timeout: 10_000 } },
    projects: [
      {
        extends: true,
        // A worker runs file after file in one process (no isolation): the server's modules load once per
        // worker instead of once per file. That load was a third of the suite's CPU: the embedded run took
        // 299 s instead of 414 s (2026-12-07, this 2-core machine). Files share no state but modules'
        // caches: every file builds its own app on its own database and closes both.
        test: { name: 'shared', include: ALL_FILES, exclude: MOCKING_FILES, isolate: false },
      },
      { extends: true, test: { name: 'isolated', include: MOCKING_FILES, isolate: true } },
    ],
  },
});
