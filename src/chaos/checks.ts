/**
 * The chaos harness's checks: pure functions from what was observed (ledger samples, HTTP answers,
 * launch outcomes, log text, the stored events) to violations, each with its evidence. No IO here,
 * so each check is unit-tested by feeding it a violation (test/unit/chaos/checks.test.ts). The checks on
 * what a run leaves behind (logs, exits, the store) live in recordChecks.ts and are exported here.
 */

export type CheckName =
  | 'cap'
  | 'oneMachinePerLaunch'
  | 'knownAfterRestart'
  | 'final'
  | 'machinesLeft'
  | 'processesLeft'
  | 'http'
  | 'logs'
  | 'exits'
  | 'store';

export const CHECKS: readonly CheckName[] = [
  'cap',
  'oneMachinePerLaunch',
  'knownAfterRestart',
  'final',
  'machinesLeft',
  'processesLeft',
  'http',
  'logs',
  'exits',
  'store',
];

export interface Violation {
  readonly check: CheckName;
  readonly message: string;
  /** Launch ids this violation concerns (the report fetches their stored facts). */
  readonly launchIds?: readonly string[];
  readonly evidence?: unknown;
}

// ---- the emulator's ledger ---------------------------------------------------------------------

/** The part of flylocal's ledger row (`GET /__flylocal/machines`) the checks read. */
export interface LedgerMachine {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly region?: string;
  readonly pid?: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly states: readonly string[];
}

/** States in which a machine runs (or is about to run, or still runs) a VM process. */
export const RUNNING_STATES: ReadonlySet<string> = new Set(['starting', 'started', 'stopping']);

/**
 * The launch a machine was made for: its `launch_id` metadata, else its name `wm-<launchId>`
 * (lowercased by the app; launch ids are upper-case ULIDs).
 */
export function launchOf(m: LedgerMachine): string | undefined {
  const meta = m.metadata['launch_id'];
  if (meta) return meta;
  // A pooled machine is named for its pool (`wm-pool-<region>-…`) until a launch claims it.
  if (isPooled(m)) return undefined;
  return m.name.startsWith('wm-') ? m.name.slice(3).toUpperCase() : undefined;
}

/** A machine of a warm pool (metadata `pool`), claimed or not. */
export function isPooled(m: LedgerMachine): boolean {
  return m.metadata['pool'] !== undefined || m.name.startsWith('wm-pool-');
}

/** A pooled machine no launch has claimed, stopped as the pool keeps it: the pool's, by design. */
export function isWaitingInPool(m: LedgerMachine): boolean {
  return (
    isPooled(m) && !m.metadata['launch_id'] && (m.state === 'created' || m.state === 'stopped')
  );
}

export interface CapSample {
  readonly at: number;
  readonly running: readonly { id: string; name: string; state: string }[];
}

export function runningOf(ledger: readonly LedgerMachine[]): CapSample['running'] {
  return ledger
    .filter((m) => RUNNING_STATES.has(m.state))
    .map((m) => ({ id: m.id, name: m.name, state: m.state }));
}

/** Machines running a VM never exceed the cap, at any sample. One violation per excursion. */
export function checkCap(samples: readonly CapSample[], cap: number): Violation[] {
  const out: Violation[] = [];
  let excursion: { first: CapSample; worst: CapSample; samples: number } | undefined;
  const close = (): void => {
    if (!excursion) return;
    const { first, worst, samples: n } = excursion;
    out.push({
      check: 'cap',
      message: `${worst.running.length} machines running a VM (cap ${cap}) at ${new Date(worst.at).toISOString()}; over the cap for ${n} sample(s) from ${new Date(first.at).toISOString()}`,
      launchIds: worst.running
        .map((r) => (r.name.startsWith('wm-') ? r.name.slice(3).toUpperCase() : undefined))
        .filter((x): x is string => x !== undefined),
      evidence: { cap, worst, first: first.at, samples: n },
    });
    excursion = undefined;
  };
  for (const s of samples) {
    if (s.running.length > cap) {
      if (!excursion) excursion = { first: s, worst: s, samples: 0 };
      excursion.samples++;
      if (s.running.length > excursion.worst.running.length) excursion.worst = s;
    } else close();
  }
  close();
  return out;
}

/** No launch ever has more than one machine (by metadata `launch_id` or name `wm-<launchId>`). */
export function checkOneMachinePerLaunch(ledger: readonly LedgerMachine[]): Violation[] {
  const byLaunch = new Map<string, LedgerMachine[]>();
  for (const m of ledger) {
    const l = launchOf(m);
    if (!l) continue;
    const list = byLaunch.get(l) ?? [];
    list.push(m);
    byLaunch.set(l, list);
  }
  const out: Violation[] = [];
  for (const [launchId, ms] of byLaunch) {
    if (ms.length <= 1) continue;
    out.push({
      check: 'oneMachinePerLaunch',
      message: `launch ${launchId} has ${ms.length} machines: ${ms.map((m) => `${m.id} (${m.name}, ${m.state})`).join(', ')}`,
      launchIds: [launchId],
      evidence: ms,
    });
  }
  return out;
}

/**
 * Every machine the emulator ever made is destroyed once the TTLs are over, except those waiting
 * stopped in a warm pool (kept on purpose; a pooled machine that ran is a launch's and must go).
 */
export function checkMachinesLeft(ledger: readonly LedgerMachine[]): Violation[] {
  return ledger
    .filter((m) => m.state !== 'destroyed' && !isWaitingInPool(m))
    .map((m) => {
      const l = launchOf(m);
      return {
        check: 'machinesLeft' as const,
        message: `machine ${m.id} (${m.name}) is still ${m.state} after the TTLs (states: ${m.states.join(' → ')})`,
        ...(l ? { launchIds: [l] } : {}),
        evidence: m,
      };
    });
}

/** No VM process of this run is alive once the TTLs are over, nor any process after the stop. */
export function checkProcessesLeft(
  procs: readonly { pid: number; what: string; machineId?: string }[],
  when: string,
): Violation[] {
  return procs.map((p) => ({
    check: 'processesLeft' as const,
    message: `${p.what} pid ${p.pid}${p.machineId ? ` (machine ${p.machineId})` : ''} still alive ${when}`,
    evidence: p,
  }));
}

// ---- launches ----------------------------------------------------------------------------------

export interface KnownProbe {
  readonly launchId: string;
  /** The instance asked, right after it (or the broker) restarted. */
  readonly instance: string;
  readonly restart: number;
  /** HTTP status of `GET /launches/:id`, or why there was none. */
  readonly status: number | 'error';
  readonly error?: string;
}

/** A launch once answered 202 is known (200) to an instance after every restart. */
export function checkKnown(probes: readonly KnownProbe[]): Violation[] {
  return probes
    .filter((p) => p.status !== 200)
    .map((p) => ({
      check: 'knownAfterRestart' as const,
      message:
        p.status === 404
          ? `launch ${p.launchId} (answered 202) is unknown to ${p.instance} after restart #${p.restart}`
          : `launch ${p.launchId}: ${p.instance} did not answer after restart #${p.restart} (${p.status === 'error' ? p.error : `HTTP ${p.status}`})`,
      launchIds: [p.launchId],
      evidence: p,
    }));
}

export interface LaunchOutcome {
  readonly launchId: string;
  /** Epoch ms of `launch.requested` (else when the POST was sent). */
  readonly requestedAt: number;
  /** Latest time it may become final: requested + ready deadline + TTL + 2 reconcile intervals. */
  readonly deadlineAt: number;
  /** The actor's XState status when last read (`done` = a final state). */
  readonly status: string | undefined;
  readonly state: unknown;
  /** Epoch ms of the fact that finished it (its last stored fact), when done. */
  readonly finalAt: number | undefined;
  readonly error?: string;
}

/** Every accepted launch reaches a final state, within its deadlines plus two reconcile intervals. */
export function checkFinal(outcomes: readonly LaunchOutcome[]): Violation[] {
  const out: Violation[] = [];
  for (const o of outcomes) {
    if (o.status !== 'done' || o.finalAt === undefined) {
      out.push({
        check: 'final',
        message: `launch ${o.launchId} is not final past its deadline ${new Date(o.deadlineAt).toISOString()} (status ${o.status ?? '?'}, state ${JSON.stringify(o.state)}${o.error ? `, ${o.error}` : ''})`,
        launchIds: [o.launchId],
        evidence: o,
      });
    } else if (o.finalAt > o.deadlineAt) {
      out.push({
        check: 'final',
        message: `launch ${o.launchId} became final ${o.finalAt - o.deadlineAt} ms after its deadline (state ${JSON.stringify(o.state)})`,
        launchIds: [o.launchId],
        evidence: o,
      });
    }
  }
  return out;
}

// ---- HTTP answers ------------------------------------------------------------------------------

export interface HttpAnswer {
  readonly at: number;
  readonly instance: string;
  readonly method: string;
  readonly path: string;
  readonly status?: number;
  /** The error body's `code`. */
  readonly code?: string;
  /** No answer: connection refused/reset, timeout. */
  readonly error?: string;
  /** The harness killed (or had not yet restarted) the instance while this request was out. */
  readonly instanceKilled: boolean;
  readonly launchId?: string;
}

/**
 * The landing app answers no 5xx but `503 CAPACITY`, and a live instance always answers. A request
 * cut by the harness's own SIGKILL of that instance is no violation.
 */
export function checkHttp(answers: readonly HttpAnswer[]): Violation[] {
  const out: Violation[] = [];
  for (const a of answers) {
    if (a.status !== undefined && a.status >= 500 && !(a.status === 503 && a.code === 'CAPACITY')) {
      out.push({
        check: 'http',
        message:
          `${a.method} ${a.path} on ${a.instance} answered ${a.status} ${a.code ?? ''}`.trim(),
        ...(a.launchId ? { launchIds: [a.launchId] } : {}),
        evidence: a,
      });
    } else if (a.status === undefined && !a.instanceKilled) {
      out.push({
        check: 'http',
        message: `${a.method} ${a.path} on ${a.instance} got no answer though nobody killed it: ${a.error ?? '?'}`,
        evidence: a,
      });
    }
  }
  return out;
}

export {
  checkExits,
  checkStore,
  CRASH_MARKERS,
  scanLog,
  type ExitInfo,
  type StoredFact,
} from './recordChecks.js';
