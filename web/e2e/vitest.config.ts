import { defineConfig } from 'vitest/config';

// End-to-end tests: a real panorama binary (PANORAMA_BIN) and headless Chromium.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: 'forks',
    reporters: ['verbose'],
  },
});
