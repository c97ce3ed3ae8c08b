/**
 * `npm run chaos`: the chaos harness from the command line. Parses the flags, prints the seed and the
 * replay command, runs (Ctrl-C stops everything it started), prints the report table and the run
 * dir, and exits 1 on any violation (2 on bad flags, 3 when the harness itself could not run).
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { REGION_CODES } from '../shared/regions.js';
import { DEFAULTS, faultConfig, replayCommand, type ChaosOptions } from './config.js';
import { formatEvidence, formatReport, runChaos } from './harness.js';

const USAGE = `usage: npm run chaos -- [flags]
  --seed <n>                 seed of the schedule and the faults (default: random, printed)
  --mode file|nats           one landing instance on the file store (default), or one per region on NATS
  --regions ams,ord,syd      the landing instances' regions (implies --mode nats when more than one)
  --rounds <n>               rounds of concurrent launches (default ${DEFAULTS.rounds})
  --launches-per-round <n>   launches per round (default ${DEFAULTS.launchesPerRound})
  --faults default|none|<json>  the emulator's fault mix (default: the issue's mix); rate limits stay on
  --cap <n>                  WM_MAX_MACHINES (default ${DEFAULTS.cap})
  --ready-ms <ms>            WM_READY_TIMEOUT_MS (default ${DEFAULTS.readyTimeoutMs})
  --ttl-ms <ms>              WM_TTL_BUTTON_MS (default ${DEFAULTS.ttlMs})
  --reconcile-ms <ms>        WM_RECONCILE_INTERVAL_MS (default ${DEFAULTS.reconcileIntervalMs})
  --snapshot-ms <ms>         WM_SNAPSHOT_INTERVAL (default ${DEFAULTS.snapshotIntervalMs}; 0: boot always reads the whole store)
  --round-ms <ms>            the least time a round takes (default ${DEFAULTS.roundMs})
  --launch-spread-ms <ms>    launches of a round are sent over 0..this (default ${DEFAULTS.launchSpreadMs})
  --nats-kill-rate <0..1>    NATS mode: share of rounds that kill -9 the broker (default ${DEFAULTS.natsKillRate})
  --pool <n>                 keep n machines stopped in each region's warm pool (default 0: none)
  --keep                     keep the run dir (it is always kept when something failed)
  --dir <path>               where to make the run dir (default the OS temp dir)
  --json                     print the report as JSON after the table`;

function fail(msg: string): never {
  process.stderr.write(`chaos: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function int(name: string, v: string | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${name}: expected a whole number ≥ ${min}`);
  return n;
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        seed: { type: 'string' },
        mode: { type: 'string' },
        regions: { type: 'string' },
        rounds: { type: 'string' },
        'launches-per-round': { type: 'string' },
        faults: { type: 'string' },
        cap: { type: 'string' },
        'ready-ms': { type: 'string' },
        'ttl-ms': { type: 'string' },
        'reconcile-ms': { type: 'string' },
        'snapshot-ms': { type: 'string' },
        'round-ms': { type: 'string' },
        'launch-spread-ms': { type: 'string' },
        'nats-kill-rate': { type: 'string' },
        pool: { type: 'string' },
        keep: { type: 'boolean', default: false },
        dir: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
})();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const regionList = values.regions
  ?.split(',')
  .map((r) => r.trim())
  .filter(Boolean);
for (const r of regionList ?? [])
  if (!REGION_CODES.includes(r)) fail(`--regions: "${r}" is not a known Fly.io region`);
const mode =
  values.mode === undefined ? ((regionList?.length ?? 0) > 1 ? 'nats' : 'file') : values.mode;
if (mode !== 'file' && mode !== 'nats') fail('--mode: file or nats');
const regions = regionList ?? (mode === 'nats' ? [...DEFAULTS.natsRegions] : [...DEFAULTS.regions]);
if (mode === 'file' && regions.length !== 1) fail('--mode file runs one instance: name one region');
const faults = values.faults ?? DEFAULTS.faults;
try {
  faultConfig(faults, 1);
} catch {
  fail('--faults: default, none, or a fault configuration as JSON');
}
const rate =
  values['nats-kill-rate'] === undefined ? DEFAULTS.natsKillRate : Number(values['nats-kill-rate']);
if (!(rate >= 0 && rate <= 1)) fail('--nats-kill-rate: a number from 0 to 1');

const opts: ChaosOptions = {
  seed: int('seed', values.seed, randomInt(1, 2 ** 31 - 1)),
  mode,
  regions,
  rounds: int('rounds', values.rounds, DEFAULTS.rounds, 1),
  launchesPerRound: int(
    'launches-per-round',
    values['launches-per-round'],
    DEFAULTS.launchesPerRound,
    1,
  ),
  faults,
  cap: int('cap', values.cap, DEFAULTS.cap, 1),
  readyTimeoutMs: int('ready-ms', values['ready-ms'], DEFAULTS.readyTimeoutMs, 1000),
  ttlMs: int('ttl-ms', values['ttl-ms'], DEFAULTS.ttlMs, 1000),
  reconcileIntervalMs: int(
    'reconcile-ms',
    values['reconcile-ms'],
    DEFAULTS.reconcileIntervalMs,
    1000,
  ),
  snapshotIntervalMs: int('snapshot-ms', values['snapshot-ms'], DEFAULTS.snapshotIntervalMs),
  roundMs: int('round-ms', values['round-ms'], DEFAULTS.roundMs),
  launchSpreadMs: int('launch-spread-ms', values['launch-spread-ms'], DEFAULTS.launchSpreadMs),
  natsKillRate: rate,
  pool: int('pool', values.pool, DEFAULTS.pool, 0),
  keep: values.keep,
  ...(values.dir ? { baseDir: values.dir } : {}),
};

const ac = new AbortController();
let interrupts = 0;
for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.on(s, () => {
    interrupts++;
    // A second Ctrl-C means now: the exit hook SIGKILLs every child this process started.
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\nchaos: ${s}: stopping everything (again to force)\n`);
    ac.abort();
  });
}

process.stdout.write(`chaos: seed ${opts.seed}\nchaos: replay with: ${replayCommand(opts)}\n`);
const report = await runChaos(opts, {
  log: (line) => process.stdout.write(`chaos: ${line}\n`),
  signal: ac.signal,
}).catch((err: unknown) => {
  process.stderr.write(
    `chaos: could not run: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(3);
});

process.stdout.write(`\n${formatReport(report)}\n\n`);
if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
const bad = report.violations.length > 0 || report.harnessError !== undefined;
if (report.evidence.length > 0) process.stdout.write(`  evidence:\n${formatEvidence(report)}\n\n`);
if (bad) {
  process.stdout.write(
    `chaos: FAILED (seed ${report.options.seed}); replay with:\n  ${report.command}\n`,
  );
}
process.stdout.write(
  `chaos: run dir ${report.runDir}${report.kept ? ' (kept: report.json, ledger.json, every process log)' : ' (removed; --keep keeps it)'}\n`,
);
process.exitCode = report.aborted ? 130 : bad ? (report.harnessError ? 3 : 1) : 0;
