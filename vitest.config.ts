import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{testing,language,engine,stdlib,proxy,replay,conformance,cli,examples}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Gateway tests start real PostgreSQL clusters; two cores do not profit from more workers.
    maxWorkers: 2,
  },
});
