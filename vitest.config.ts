import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file opens its own database (an in-memory PGlite, or a fresh PostgreSQL database); files run in
    // parallel, one per core.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
