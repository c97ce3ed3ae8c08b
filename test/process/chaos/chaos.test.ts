/**
 * A short seeded chaos run of each mode, through the harness as `npm run chaos` runs it: the built
 * programs as real processes, the fault mix, a landing SIGKILL every round (and the broker's
 * in NATS mode). It must find no violation, and the chaos must really have happened.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type ChaosOptions } from '../../../src/chaos/config.js';
import {
  formatEvidence,
  formatReport,
  runChaos,
  type ChaosReport,
} from '../../../src/chaos/harness.js';
import { NATS_SERVER, needs } from '../../support/require.js';

const base: ChaosOptions = {
  seed: 20240611,
  mode: 'file',
  regions: ['ams'],
  rounds: 3,
  launchesPerRound: 6,
  faults: 'default',
  cap: DEFAULTS.cap,
  readyTimeoutMs: DEFAULTS.readyTimeoutMs,
  // Shorter than the CLI's 20 s so the run ends well inside the test's budget.
  ttlMs: 12_000,
  reconcileIntervalMs: DEFAULTS.reconcileIntervalMs,
  roundMs: DEFAULTS.roundMs,
  launchSpreadMs: DEFAULTS.launchSpreadMs,
  natsKillRate: 1,
  keep: false,
};

async function run(o: ChaosOptions): Promise<ChaosReport> {
  const lines: string[] = [];
  const report = await runChaos(o, { log: (l) => lines.push(l) });
  const explain = `\n${lines.join('\n')}\n${formatReport(report)}\n${formatEvidence(report)}\nrun dir: ${report.runDir}\nreplay: ${report.command}\n`;
  expect(report.harnessError, explain).toBeUndefined();
  expect(report.violations, explain).toEqual([]);
  // The chaos happened: every round killed the landing app, the emulator injected faults, and
  // launches got through it.
  expect(report.figures.rounds, explain).toBe(o.rounds);
  expect(report.figures.landingKills, explain).toBe(o.rounds);
  expect(report.figures.faultsInjected, explain).toBeGreaterThan(0);
  expect(report.figures.accepted, explain).toBeGreaterThan(0);
  expect(report.figures.samples, explain).toBeGreaterThan(0);
  expect(report.figures.storeEvents, explain).toBeGreaterThan(0);
  return report;
}

describe('chaos: file mode', () => {
  it(
    'one landing instance on the file store survives a SIGKILL per round',
    { timeout: 180_000 },
    async () => {
      await run(base);
    },
  );
});

const hasNats = needs('nats-server on PATH (the NATS chaos run)', NATS_SERVER);

describe.skipIf(!hasNats)('chaos: NATS mode', () => {
  it(
    'three landing instances on NATS survive SIGKILLs and broker kill -9s',
    { timeout: 180_000 },
    async () => {
      const report = await run({
        ...base,
        seed: 20240612,
        mode: 'nats',
        regions: ['ams', 'ord', 'syd'],
      });
      expect(report.figures.natsKills).toBeGreaterThanOrEqual(1);
    },
  );
});
