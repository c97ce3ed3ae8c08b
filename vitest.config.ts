// Test runner configuration: one project per tier (unit, contract, integration, browser, process),
// with the files each runs in test/tiers.ts. `vitest run` runs them all; `--project unit` the inner loop.
import { defineConfig } from 'vitest/config';
import { TIERS } from './test/tiers.js';

export default defineConfig({
  test: {
    // On the root, not the projects: the root's globalSetup runs once per run whichever projects run,
    // while a project's (and `extends: true` would copy it into each) runs once per project.
    globalSetup: ['test/support/globalSetup.ts'],
    // Child processes and servers per file: keep parallelism modest on a 2-core machine. Projects
    // that set none take the root's, and projects with equal maxWorkers share one pool of workers.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
    projects: Object.entries(TIERS).map(([name, include]) => ({
      test: {
        name,
        include: [...include],
        testTimeout: 30_000,
        hookTimeout: 60_000,
        // Unit tests hold no state between files, so a worker keeps its loaded modules from one
        // file to the next: loading them again for every file was half the tier's time.
        isolate: name !== 'unit',
      },
    })),
  },
});
