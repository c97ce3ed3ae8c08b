/**
 * The chaos harness: runs the built programs (dist/flylocal.mjs with seeded faults and Fly's rate
 * limits, dist/where.mjs on the file store or on a nats-server it owns) as real processes, drives
 * rounds of concurrent launches while SIGKILLing landing instances (and the broker), samples the
 * emulator's ledger every 100 ms, and judges what it saw with the pure checks in checks.ts.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../shared/errors.js';
import { checkExits, checkProcessesLeft, checkStore, scanLog, type Violation } from './checks.js';
import { replayCommand, schedule, type ChaosOptions, type RoundPlan } from './config.js';
import { awaitOutcomes, finalBy, gatherEvidence, judgeRun, LandingReads } from './judge.js';
import { natsServerBinary } from './natsServer.js';
import { pidAlive, processesWithEnv, sleep, waitUntil } from './procs.js';
import {
  emptyFigures,
  writeRunFiles,
  type ChaosFigures,
  type ChaosReport,
  type LaunchEvidence,
} from './report.js';
import { LedgerSampler } from './sampler.js';
import { ChaosStack } from './stack.js';
import { Traffic } from './traffic.js';

export { formatEvidence, formatReport } from './report.js';
export type { ChaosFigures, ChaosReport, LaunchEvidence } from './report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ChaosIo {
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** One run's moving parts, shared by its phases. */
interface Run {
  readonly opts: ChaosOptions;
  readonly signal: AbortSignal | undefined;
  readonly stack: ChaosStack;
  readonly fig: ChaosFigures;
  readonly traffic: Traffic;
  readonly sampler: LedgerSampler;
  readonly violations: Violation[];
  readonly evidence: LaunchEvidence[];
  readonly roundTimes: number[];
  readonly note: (line: string) => void;
}

function assertRunnable(opts: ChaosOptions): void {
  for (const f of ['dist/flylocal.mjs', 'dist/where.mjs', 'dist/useless.mjs']) {
    if (!existsSync(join(ROOT, f)))
      throw new Error(`${f} is missing: run node scripts/build.mjs first`);
  }
  if (opts.mode === 'file' && opts.regions.length !== 1)
    throw new Error('file mode runs exactly one landing instance (name one region)');
  if (opts.mode === 'nats' && !natsServerBinary())
    throw new Error('NATS mode needs nats-server on PATH');
}

/** One round: its launches, the landing kill and restart, the broker kill; then the known-check. */
async function playRound(run: Run, r: RoundPlan, rounds: number): Promise<void> {
  const { opts, signal, stack, fig, traffic, note } = run;
  const t0 = Date.now();
  const tasks: Promise<void>[] = r.launches.map((lp) =>
    sleep(lp.atMs, signal).then(() =>
      signal?.aborted
        ? undefined
        : traffic.postLaunch(stack.landings[lp.instance]!, lp.clientIp, r.round),
    ),
  );
  const victim = stack.landings[r.kill.instance]!;
  tasks.push(
    sleep(r.kill.atMs, signal).then(async () => {
      if (signal?.aborted) return;
      await stack.killLanding(victim);
      fig.landingKills++;
      note(`round ${r.round}: SIGKILL ${victim.id} at +${r.kill.atMs} ms; starting it again`);
      await stack.startLanding(victim, signal, traffic.answers);
    }),
  );
  const nats = stack.nats;
  const nk = r.natsKill;
  if (nk && nats) {
    tasks.push(
      sleep(nk.atMs, signal).then(async () => {
        if (signal?.aborted) return;
        await nats.kill();
        fig.natsKills++;
        note(`round ${r.round}: kill -9 nats-server at +${nk.atMs} ms, down ${nk.downMs} ms`);
        await sleep(nk.downMs, signal);
        await nats.start();
      }),
    );
  }
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  await traffic.knownCheck(victim, victim.restarts);
  fig.rounds++;
  await sleep(Math.max(0, opts.roundMs - (Date.now() - t0)), signal);
  run.roundTimes.push(Date.now() - t0);
  note(
    `round ${r.round}/${rounds}: ${Date.now() - t0} ms; accepted ${fig.accepted}, capacity ${fig.capacity}, running now ${run.sampler.samples.at(-1)?.running.length ?? '?'}, max ${fig.maxRunning}/${opts.cap}`,
  );
}

/** After the rounds: every launch final, no machine and no VM left, then judge and gather evidence. */
async function afterRounds(run: Run, roundsEnd: number): Promise<void> {
  const { opts, signal, stack, fig, traffic, note } = run;
  const reads = new LandingReads(stack.landings, stack.debugToken);
  const accepted = traffic.accepted;
  const lastDeadline = Math.max(roundsEnd, ...accepted.map((a) => finalBy(opts, a.sentAt)));
  note(
    `rounds done; waiting for ${accepted.length} launches to finish (until ${Math.round((lastDeadline - Date.now()) / 1000)} s from now)`,
  );
  const outcomes = await awaitOutcomes(reads, opts, accepted, signal);

  // After the TTLs: no machine and no VM process left.
  const settleBy = finalBy(opts, roundsEnd);
  await waitUntil(
    async () => (await stack.ledger()).every((m) => m.state === 'destroyed'),
    Math.max(0, settleBy - Date.now()),
    250,
    signal,
  );
  const finalLedger = await stack.ledger().catch(() => run.sampler.latest);
  writeFileSync(join(stack.runDir, 'ledger.json'), JSON.stringify(finalLedger, null, 2));
  let vms = processesWithEnv(stack.vmMarker) ?? [];
  if (vms.length > 0) {
    await sleep(2000);
    vms = processesWithEnv(stack.vmMarker) ?? [];
  }

  // Judge what can be judged while the landing app still answers.
  const aborted = signal?.aborted ?? false;
  const samples = run.sampler.samples;
  run.violations.push(
    ...judgeRun(opts, { outcomes, finalLedger, vms, samples, traffic, aborted }, fig),
  );

  const stats = await stack.flyAdmin('/stats').catch(() => undefined);
  const st = (stats?.body ?? {}) as {
    faults?: Record<string, number>;
    rateLimited?: Record<string, number>;
  };
  fig.faultsByKind = st.faults ?? {};
  fig.faultsInjected = Object.values(fig.faultsByKind).reduce((a, b) => a + b, 0);
  fig.rateLimited = Object.values(st.rateLimited ?? {}).reduce((a, b) => a + b, 0);
  run.evidence.push(...(await gatherEvidence(reads, run.violations, finalLedger)));
}

/** Stop everything, read the store back, scan the logs and exits, and count what outlived the run. */
async function tearDown(run: Run, harnessError: string | undefined): Promise<void> {
  const { opts, stack, fig, violations } = run;
  await stack.stopLandings();
  await run.sampler.stop();
  await stack.flylocal.stop(15_000).catch(() => undefined);
  // The store, read back with the landing app stopped (NATS: before the broker stops).
  try {
    if (!harnessError || opts.mode === 'file' || stack.nats?.running) {
      const events = await stack.readStore((v) => violations.push(v));
      fig.storeEvents = events.length;
      fig.storeStreams = new Set(events.map((e) => e.stream)).size;
      violations.push(...checkStore(events));
    }
  } catch (err) {
    violations.push({
      check: 'store',
      message: `could not read the store back: ${errorMessage(err)}`,
    });
  }
  await stack.nats?.stop(10_000).catch(() => undefined);
  // Logs of every process, and exits nobody asked for.
  const runDir = stack.runDir;
  for (const f of readdirSync(runDir).filter((n) => n.endsWith('.log'))) {
    violations.push(...scanLog(f, readFileSync(join(runDir, f), 'utf8')));
  }
  violations.push(...checkExits(stack.processes().flatMap((p) => p.exits)));
  // Nothing of this run may outlive it.
  const left = [
    ...stack.everyPid().filter((p) => pidAlive(p.pid)),
    ...(processesWithEnv(stack.vmMarker) ?? []).map((v) => ({ ...v, what: 'VM process' })),
  ];
  violations.push(...checkProcessesLeft(left, 'after the harness stopped everything'));
  fig.processesLeft += left.length;
}

/** The run: start everything, play the rounds, judge, stop; the report says what was found. */
export async function runChaos(opts: ChaosOptions, io: ChaosIo): Promise<ChaosReport> {
  const started = Date.now();
  const { log, signal } = io;
  const command = replayCommand(opts);
  assertRunnable(opts);
  const base = opts.baseDir ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const runDir = mkdtempSync(join(base, `wm-chaos-${opts.seed}-`));
  const plan = schedule(opts);
  const fig = emptyFigures(opts.cap);
  const journal: string[] = [];
  const note = (line: string): void => {
    journal.push(`${new Date().toISOString()} ${line}`);
    log(line);
  };
  note(`seed ${opts.seed}, mode ${opts.mode}, run dir ${runDir}`);
  note(`replay: ${command}`);
  const stack = await ChaosStack.create(opts, runDir, ROOT);
  const run: Run = {
    opts,
    signal,
    stack,
    fig,
    traffic: new Traffic(fig, signal),
    sampler: new LedgerSampler(() => stack.ledger(), fig),
    violations: [],
    evidence: [],
    roundTimes: [],
    note,
  };

  let harnessError: string | undefined;
  let aborted = false;
  try {
    await stack.nats?.start();
    await stack.startFlylocal(signal);
    run.sampler.start();
    await Promise.all(
      stack.landings.map((l) => stack.startLanding(l, signal, run.traffic.answers)),
    );
    note(`up: ${stack.describe()}`);
    for (const r of plan) {
      if (signal?.aborted) break;
      await playRound(run, r, plan.length);
    }
    await afterRounds(run, Date.now());
  } catch (err) {
    harnessError = errorMessage(err);
    note(`harness error: ${harnessError}`);
  } finally {
    aborted = signal?.aborted ?? false;
    if (aborted) note('interrupted: stopping everything');
    await tearDown(run, harnessError);
  }

  const times = run.roundTimes;
  fig.roundMsAvg = times.length ? Math.round(times.reduce((a, b) => a + b, 0) / times.length) : 0;
  fig.durationMs = Date.now() - started;
  const failed = run.violations.length > 0 || harnessError !== undefined;
  const kept = opts.keep || failed || aborted;
  const report: ChaosReport = {
    options: opts,
    command,
    runDir,
    kept,
    aborted,
    harnessError,
    figures: fig,
    violations: run.violations,
    evidence: run.evidence,
  };
  const { samples } = run.sampler;
  const { answers, probes } = run.traffic;
  writeRunFiles(report, { journal, samples, answers, probes });
  if (!kept) rmSync(runDir, { recursive: true, force: true });
  return report;
}
