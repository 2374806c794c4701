import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
    // Each file opens its own database (an in-memory PGlite, or a fresh PostgreSQL database), so files run
    // in parallel. Vitest's default is one less than the cores, which on the 2-core machines this runs on
    // (CI's too) was one file at a time; most of a file's time is spent waiting (on timers, sockets, child
    // processes), and two at a time took the embedded run there from about 9 to under 5 minutes.
    pool: 'forks',
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
