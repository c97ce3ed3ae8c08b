/**
 * After the rounds: wait for every accepted launch to become final (read from the landing app's
 * debug endpoint), judge the ledger, the processes and the answers, and fetch the evidence of each
 * violating launch for the report.
 */
import { errorMessage } from '../shared/errors.js';
import {
  checkCap,
  checkFinal,
  checkHttp,
  checkKnown,
  checkMachinesLeft,
  checkOneMachinePerLaunch,
  checkProcessesLeft,
  launchOf,
  type CapSample,
  type LaunchOutcome,
  type LedgerMachine,
  type Violation,
} from './checks.js';
import type { ChaosOptions } from './config.js';
import { http, mapLimit } from './http.js';
import { sleep } from './procs.js';
import type { ChaosFigures, LaunchEvidence } from './report.js';
import type { Landing } from './stack.js';
import { readLaunch, type Accepted, type Traffic } from './traffic.js';

/** How many violating launches get their stored facts fetched into the report. */
const EVIDENCE_LAUNCHES = 25;

/** Reads of the landing app, from whichever instance is up. */
export class LandingReads {
  constructor(
    private readonly landings: readonly Landing[],
    private readonly debugToken: string,
  ) {}

  /** `/debug/actors/<kind>.<id>`: the actor and its stored history (a 404 body when unknown). */
  async debugActor(id: string, kind = 'launch'): Promise<unknown> {
    let lastErr = '';
    for (const l of this.landings) {
      if (l.down) continue;
      try {
        const r = await http(`http://127.0.0.1:${l.privatePort}/debug/actors/${kind}.${id}`, {
          headers: { authorization: `Bearer ${this.debugToken}` },
          timeoutMs: 15_000,
        });
        if (r.status === 200 || r.status === 404) return r.body;
        lastErr = `HTTP ${r.status} from ${l.id}`;
      } catch (err) {
        lastErr = `${l.id}: ${errorMessage(err)}`;
      }
    }
    throw new Error(lastErr || 'no instance up');
  }

  /** What the visitor sees: `GET /launches/:id`. */
  async publicView(launchId: string): Promise<unknown> {
    const l = this.landings.find((x) => !x.down);
    if (!l) throw new Error('no instance up');
    return (await readLaunch(l, launchId)).body;
  }
}

/** Latest time a launch may become final: requested + ready deadline + TTL + 2 reconcile intervals. */
export const finalBy = (opts: ChaosOptions, requestedAt: number): number =>
  requestedAt + opts.readyTimeoutMs + opts.ttlMs + 2 * opts.reconcileIntervalMs;

async function readOutcome(
  reads: LandingReads,
  opts: ChaosOptions,
  a: Accepted,
): Promise<LaunchOutcome> {
  try {
    const body = (await reads.debugActor(a.launchId)) as {
      actor?: { status?: string; state?: unknown };
      history?: { at: string }[];
      code?: string;
    };
    const first = body.history?.[0]?.at;
    const requestedAt = first ? Date.parse(first) : a.sentAt;
    const lastAt = body.history?.at(-1)?.at;
    const status = body.actor?.status ?? (body.code ? `404 ${body.code}` : undefined);
    return {
      launchId: a.launchId,
      requestedAt,
      deadlineAt: finalBy(opts, requestedAt),
      status,
      state: body.actor?.state,
      finalAt: status === 'done' && lastAt ? Date.parse(lastAt) : undefined,
    };
  } catch (err) {
    return {
      launchId: a.launchId,
      requestedAt: a.sentAt,
      deadlineAt: finalBy(opts, a.sentAt),
      status: undefined,
      state: undefined,
      finalAt: undefined,
      error: errorMessage(err),
    };
  }
}

/** Read every accepted launch until all are final or the last open one is past its deadline. */
export async function awaitOutcomes(
  reads: LandingReads,
  opts: ChaosOptions,
  accepted: readonly Accepted[],
  signal: AbortSignal | undefined,
): Promise<LaunchOutcome[]> {
  const outcomes = new Map<string, LaunchOutcome>();
  while (!signal?.aborted) {
    const open = accepted.filter((a) => outcomes.get(a.launchId)?.status !== 'done');
    if (open.length === 0) break;
    for (const o of await mapLimit(open, 8, (a) => readOutcome(reads, opts, a)))
      outcomes.set(o.launchId, o);
    const stillOpen = [...outcomes.values()].filter((o) => o.status !== 'done');
    if (stillOpen.length === 0) break;
    if (Date.now() > Math.max(...stillOpen.map((o) => o.deadlineAt)) + 2000) break;
    await sleep(1000, signal);
  }
  return [...outcomes.values()];
}

export interface Observed {
  outcomes: readonly LaunchOutcome[];
  finalLedger: readonly LedgerMachine[];
  /** VM processes of this run still alive after the TTLs. */
  vms: readonly { pid: number; machineId?: string }[];
  samples: readonly CapSample[];
  traffic: Traffic;
  aborted: boolean;
}

/** The checks that judge the run itself (the ones after the stop come later), and their figures. */
export function judgeRun(opts: ChaosOptions, o: Observed, fig: ChaosFigures): Violation[] {
  const violations: Violation[] = [];
  if (!o.aborted) {
    violations.push(...checkFinal(o.outcomes));
    violations.push(...checkMachinesLeft(o.finalLedger));
    violations.push(
      ...checkProcessesLeft(
        o.vms.map((v) => ({ ...v, what: 'VM process' })),
        'after the TTLs',
      ),
    );
  }
  violations.push(...checkCap(o.samples, opts.cap));
  violations.push(...checkOneMachinePerLaunch(o.finalLedger));
  violations.push(...checkKnown(o.traffic.probes));
  violations.push(...checkHttp(o.traffic.answers));
  fig.machinesCreated = o.finalLedger.length;
  fig.duplicates = new Set(
    violations.filter((v) => v.check === 'oneMachinePerLaunch').flatMap((v) => v.launchIds ?? []),
  ).size;
  fig.lost = new Set(o.traffic.probes.filter((p) => p.status === 404).map((p) => p.launchId)).size;
  fig.notFinal = violations.filter((v) => v.check === 'final').length;
  fig.machinesLeft = o.finalLedger.filter((m) => m.state !== 'destroyed').length;
  fig.processesLeft = o.vms.length;
  return violations;
}

/** Each violating launch's stored facts (debug endpoint), public view and ledger rows. */
export async function gatherEvidence(
  reads: LandingReads,
  violations: readonly Violation[],
  finalLedger: readonly LedgerMachine[],
): Promise<LaunchEvidence[]> {
  const failed = (err: unknown) => ({ error: errorMessage(err) });
  const suspects = [...new Set(violations.flatMap((v) => v.launchIds ?? []))].slice(
    0,
    EVIDENCE_LAUNCHES,
  );
  const evidence: LaunchEvidence[] = [];
  for (const launchId of suspects) {
    const machines = finalLedger.filter(
      (m) => launchOf(m)?.toUpperCase() === launchId.toUpperCase(),
    );
    const vms: Record<string, unknown> = {};
    for (const m of machines) vms[m.id] = await reads.debugActor(m.id, 'vm').catch(failed);
    evidence.push({
      launchId,
      vms,
      debug: await reads.debugActor(launchId).catch(failed),
      view: await reads.publicView(launchId).catch(failed),
      machines,
    });
  }
  return evidence;
}
