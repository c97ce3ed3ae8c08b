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
  unit: [
    'test/unit/**/*.test.ts',
    'test/model/**/*.test.ts',
    // Not yet in test/unit/ (their folders are being edited elsewhere; they move there next).
    'test/views/**/*.test.ts',
    'test/web/fleet.test.ts',
    'test/web/folders.test.ts',
    'test/web/launchButton.machine.test.ts',
    'test/integration/where.promises.test.ts',
    'test/integration/where.reconciler.test.ts',
  ],
  contract: ['test/contract/**/*.test.ts'],
  integration: [
    'test/integration/*/**/*.test.ts',
    // Not yet in a folder of their own (being edited elsewhere).
    'test/integration/where.autospawn.test.ts',
    'test/integration/where.callbacks.test.ts',
    'test/integration/where.cooldown.test.ts',
    'test/integration/where.debug.test.ts',
    'test/integration/where.fleet.test.ts',
    'test/integration/where.launch.test.ts',
    'test/integration/where.publicInput.test.ts',
    'test/integration/where.retention.test.ts',
  ],
  browser: [
    'test/browser/**/*.test.ts',
    // Not yet in test/browser/ (being edited elsewhere).
    'test/web/browser.test.ts',
  ],
  process: [
    'test/process/**/*.test.ts',
    // Not yet in test/process/ (being edited elsewhere): the emulator runs the real VM bundle.
    'test/integration/metrics.test.ts',
  ],
} as const satisfies Record<string, readonly string[]>;

export type Tier = keyof typeof TIERS;
