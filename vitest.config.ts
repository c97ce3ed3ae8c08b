// Test runner configuration: one run covers unit, model, contract, integration and browser tests.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/globalSetup.ts'],
    // Child processes and servers per file: keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
