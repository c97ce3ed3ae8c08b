/**
 * Which test files each tier (vitest project) runs: vitest.config.ts builds its projects from this,
 * and test/unit/testLayout.test.ts checks that every test file is in exactly one tier.
 */

/**
 * A tier is named by what its tests need, not by what they test:
 * - unit: in process, no sockets, no child processes, no browser (temp files are fine); with the
 *   charts' model-based tests. `npm run test:unit` runs it alone, the inner loop.
 * - contract: the ports' contract suites, run against every adapter and fake.
 * - integration: programs in process over real sockets, real files, a real nats-server.
 * - browser: drives Chromium.
 * - process: this project's programs as child processes (the local stack, crashes, chaos).
 */
export const TIERS = {
  unit: ['test/unit/**/*.test.ts', 'test/model/**/*.test.ts'],
  contract: ['test/contract/**/*.test.ts'],
  integration: ['test/integration/*/**/*.test.ts'],
  browser: ['test/browser/**/*.test.ts'],
  process: ['test/process/**/*.test.ts'],
} as const satisfies Record<string, readonly string[]>;

export type Tier = keyof typeof TIERS;
