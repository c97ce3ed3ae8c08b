/**
 * G13, model run (CI size): 100 fast-check command sequences (clicks, VM callbacks, VM exits, Fly
 * faults, time passing) against the runtime, the launch/vm charts and the services; after each
 * command live VMs ≤ cap and ≤ 1 machine per launch; after each sequence every machine made is
 * destroyed, no slot is held, every actor finished, versions contiguous, replay = live. The
 * 1,000-sequence figure is bench/reliability/modelRun.ts.
 */
import { describe, expect, it } from 'vitest';
import { runModel } from '../../../bench/reliability/modelRun.js';

describe('G13: fc.asyncModelRun over the runtime and the launch/vm charts', () => {
  it('keeps every invariant over 100 command sequences', { timeout: 120_000 }, async () => {
    const stats = await runModel({ numRuns: 100, seed: 4242 });
    // The sequences really exercised the system: launches, machines, faults, refusals at the cap.
    expect(stats.launches).toBeGreaterThan(50);
    expect(stats.machines).toBeGreaterThan(50);
    expect(stats.faults).toBeGreaterThan(20);
    expect(stats.maxLive).toBeLessThanOrEqual(3);
  });
});
