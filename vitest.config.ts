import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time even on a 2-core machine: most of a file's time is spent waiting on child
    // processes, PostgreSQL and timers, and each test uses its own schema or SQLite file (test/helpers/stores.ts).
    // One file at a time took about 670 s on a 2-core machine, two 350-490 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    env: { REBOUND_LOG_LEVEL: 'silent' },
  },
});
