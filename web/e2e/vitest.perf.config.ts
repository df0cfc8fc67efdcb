import { defineConfig } from 'vitest/config';

// Performance measurements (npm run perf): figures go to BENCHMARKS.md.
export default defineConfig({
  test: {
    include: ['e2e/**/*.perf.ts'],
    environment: 'node',
    testTimeout: 1_800_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    pool: 'forks',
    reporters: ['verbose'],
  },
});
