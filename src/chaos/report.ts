/**
 * The chaos run's report: its figures, violations and evidence, the table the CLI prints, the
 * evidence lines for violating launches, and the files a run dir keeps.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKS,
  type CapSample,
  type CheckName,
  type HttpAnswer,
  type KnownProbe,
  type LedgerMachine,
  type Violation,
} from './checks.js';
import type { ChaosOptions } from './config.js';

export interface ChaosFigures {
  rounds: number;
  launchesSent: number;
  accepted: number;
  capacity: number;
  /** Other answers to POST /launches, "<status> <code>" → count. */
  otherAnswers: Record<string, number>;
  /** POSTs cut by the harness's own kill (no answer). */
  cutByKill: number;
  /** POSTs held back until the killed instance was up again. */
  waitedForRestart: number;
  landingKills: number;
  natsKills: number;
  faultsInjected: number;
  faultsByKind: Record<string, number>;
  rateLimited: number;
  samples: number;
  sampleErrors: number;
  maxSampleGapMs: number;
  maxRunning: number;
  cap: number;
  machinesCreated: number;
  duplicates: number;
  lost: number;
  notFinal: number;
  machinesLeft: number;
  processesLeft: number;
  storeEvents: number;
  storeStreams: number;
  roundMsAvg: number;
  durationMs: number;
}

export function emptyFigures(cap: number): ChaosFigures {
  return {
    rounds: 0,
    launchesSent: 0,
    accepted: 0,
    capacity: 0,
    otherAnswers: {},
    cutByKill: 0,
    waitedForRestart: 0,
    landingKills: 0,
    natsKills: 0,
    faultsInjected: 0,
    faultsByKind: {},
    rateLimited: 0,
    samples: 0,
    sampleErrors: 0,
    maxSampleGapMs: 0,
    maxRunning: 0,
    cap,
    machinesCreated: 0,
    duplicates: 0,
    lost: 0,
    notFinal: 0,
    machinesLeft: 0,
    processesLeft: 0,
    storeEvents: 0,
    storeStreams: 0,
    roundMsAvg: 0,
    durationMs: 0,
  };
}

export interface LaunchEvidence {
  launchId: string;
  /** `/debug/actors/launch.<id>`: the actor and its whole stored history. */
  debug: unknown;
  /** `GET /launches/:id`: what the visitor sees (a launch in cleanup already says `failed`). */
  view: unknown;
  /** `/debug/actors/vm.<machineId>` for each of its machines. */
  vms: Record<string, unknown>;
  machines: LedgerMachine[];
}

export interface ChaosReport {
  options: ChaosOptions;
  command: string;
  runDir: string;
  kept: boolean;
  aborted: boolean;
  /** A failure of the harness itself (could not start something), not a violation found. */
  harnessError: string | undefined;
  figures: ChaosFigures;
  violations: Violation[];
  evidence: LaunchEvidence[];
}

/** The report as a table (the CLI prints it; tests print it on failure). */
export function formatReport(r: ChaosReport): string {
  const f = r.figures;
  const byCheck = new Map<CheckName, number>();
  for (const v of r.violations) byCheck.set(v.check, (byCheck.get(v.check) ?? 0) + 1);
  const rows: [string, string][] = [
    ['seed', String(r.options.seed)],
    ['mode', `${r.options.mode} (${r.options.regions.join(',')})`],
    ['faults', r.options.faults],
    ['rounds', `${f.rounds} (avg ${f.roundMsAvg} ms per round)`],
    ['launches sent', String(f.launchesSent)],
    ['  202 accepted', String(f.accepted)],
    ['  503 CAPACITY', String(f.capacity)],
    ['  other answers', JSON.stringify(f.otherAnswers)],
    ['  cut by a kill', String(f.cutByKill)],
    ['  held until restarted', String(f.waitedForRestart)],
    ['landing kills', String(f.landingKills)],
    ['nats kills', String(f.natsKills)],
    ['faults injected', `${f.faultsInjected} ${JSON.stringify(f.faultsByKind)}`],
    ['rate-limited (429)', String(f.rateLimited)],
    ['ledger samples', `${f.samples} (errors ${f.sampleErrors}, max gap ${f.maxSampleGapMs} ms)`],
    ['max running vs cap', `${f.maxRunning} / ${f.cap}`],
    ['machines created', String(f.machinesCreated)],
    ['duplicates', String(f.duplicates)],
    ['lost (unknown after restart)', String(f.lost)],
    ['not final in time', String(f.notFinal)],
    ['machines left', String(f.machinesLeft)],
    ['processes left', String(f.processesLeft)],
    ['store', `${f.storeEvents} events in ${f.storeStreams} streams`],
    ['duration', `${Math.round(f.durationMs / 1000)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  lines.push('', '  check                 violations');
  for (const c of CHECKS) lines.push(`  ${c.padEnd(22)}${byCheck.get(c) ?? 0}`);
  if (r.aborted)
    lines.push(
      '',
      `  INTERRUPTED after ${f.rounds} round(s): the final, machinesLeft and processesLeft-after-TTL checks did not run`,
    );
  if (r.harnessError) lines.push('', `  HARNESS ERROR: ${r.harnessError}`);
  if (r.violations.length > 0) {
    lines.push('', `  ${r.violations.length} violation(s):`);
    for (const v of r.violations.slice(0, 40)) lines.push(`  - [${v.check}] ${v.message}`);
    if (r.violations.length > 40) lines.push(`  … ${r.violations.length - 40} more in report.json`);
  }
  return lines.join('\n');
}

/** What `/debug/actors/<kind>.<id>` answers, as far as the evidence lines read it. */
interface ActorDebug {
  actor?: { status?: string; state?: unknown };
  history?: {
    version: number;
    at: string;
    type: string;
    data: unknown;
    meta?: { instance?: string };
  }[];
  error?: string;
}

/** One line per stored fact of an actor, its data cut to `width` characters. */
function historyLines(d: ActorDebug, indent: string, width: number): string[] {
  return (d.history ?? []).map(
    (h) =>
      `${indent}v${h.version} ${h.at} ${h.type} ${JSON.stringify(h.data).slice(0, width)} [${h.meta?.instance ?? ''}]`,
  );
}

/** Each violating launch's stored facts and ledger rows, compactly (report.json has all of it). */
export function formatEvidence(r: ChaosReport): string {
  const out: string[] = [];
  for (const e of r.evidence) {
    const d = e.debug as ActorDebug;
    const v = e.view as { status?: string; reason?: string; at?: string } | undefined;
    out.push(
      `  launch ${e.launchId}: actor ${d.actor?.status ?? '?'} ${JSON.stringify(d.actor?.state ?? d.error ?? null)}; visitor sees ${v?.status ?? '?'}${v?.reason ? ` (${v.reason})` : ''}${v?.at ? ` since ${v.at}` : ''}`,
    );
    out.push(...historyLines(d, '    ', 160));
    for (const m of e.machines) {
      out.push(`    ledger: ${m.id} ${m.name} ${m.state} (${m.states.join(' → ')})`);
      const vm = e.vms?.[m.id] as ActorDebug | undefined;
      if (!vm) continue;
      out.push(
        `    vm.${m.id}: actor ${vm.actor?.status ?? '?'} ${JSON.stringify(vm.actor?.state ?? null)}`,
      );
      out.push(...historyLines(vm, '      ', 140));
    }
    if (e.machines.length === 0) out.push('    ledger: no machine');
  }
  return out.join('\n');
}

/** The run dir's record: journal, samples, the report with every answer and probe. */
export function writeRunFiles(
  r: ChaosReport,
  kept: { journal: string[]; samples: CapSample[]; answers: HttpAnswer[]; probes: KnownProbe[] },
): void {
  writeFileSync(join(r.runDir, 'journal.log.txt'), kept.journal.join('\n') + '\n');
  writeFileSync(
    join(r.runDir, 'samples.ndjson'),
    kept.samples.map((s) => JSON.stringify({ at: s.at, running: s.running.length })).join('\n') +
      '\n',
  );
  writeFileSync(
    join(r.runDir, 'report.json'),
    JSON.stringify({ ...r, answers: kept.answers, probes: kept.probes }, null, 2),
  );
}
