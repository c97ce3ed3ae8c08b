/**
 * The chaos harness's checks: pure functions from what was observed (ledger samples, HTTP answers,
 * launch outcomes, log text, the stored events) to violations, each with its evidence. No IO here,
 * so each check is unit-tested by feeding it a violation (test/chaos/checks.test.ts).
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
  return m.name.startsWith('wm-') ? m.name.slice(3).toUpperCase() : undefined;
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

/** Every machine the emulator ever made is destroyed once the TTLs are over. */
export function checkMachinesLeft(ledger: readonly LedgerMachine[]): Violation[] {
  return ledger
    .filter((m) => m.state !== 'destroyed')
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

// ---- logs --------------------------------------------------------------------------------------

/** Text that means a process crashed or lost an error, in any log, JSON or not. */
export const CRASH_MARKERS: readonly RegExp[] = [
  /unhandled ?rejection/i,
  /uncaught ?exception/i,
  /UnhandledPromiseRejection/,
  /FATAL ERROR/,
  /Segmentation fault|core dumped/i,
  /^panic:/,
  /\[FTL\]/,
  /heap out of memory/i,
];

/** A level-50 line that is an expected answer, not an error: the `503 CAPACITY` refusal. */
function allowedErrorLine(rec: Record<string, unknown>): boolean {
  const err = rec['err'] as { code?: unknown; statusCode?: unknown } | undefined;
  return err?.code === 'CAPACITY';
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One log file's violations: pino lines at level ≥ 50 (error, fatal) except a CAPACITY refusal,
 * VM lines (flylocal logs each VM output line as `msg` with a `machine` field) judged the same way,
 * and crash markers anywhere. `source` names the file in the message.
 */
export function scanLog(source: string, text: string): Violation[] {
  const out: Violation[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (!line) continue;
    const rec = parseJson(line);
    const inner =
      rec && typeof rec['machine'] === 'string' && typeof rec['msg'] === 'string'
        ? parseJson(rec['msg'])
        : undefined;
    const judged = inner ?? rec;
    const text = inner ? (rec!['msg'] as string) : line;
    let why: string | undefined;
    if (judged && typeof judged['level'] === 'number' && judged['level'] >= 50) {
      if (!allowedErrorLine(judged)) why = `level ${judged['level']}`;
    }
    if (!why) {
      const m = CRASH_MARKERS.find((r) => r.test(text));
      if (m) why = `crash marker ${m}`;
    }
    if (why) {
      out.push({
        check: 'logs',
        message: `${source}:${i + 1}: ${why}: ${line.slice(0, 300)}`,
        evidence: { source, line: i + 1, text: line.slice(0, 2000) },
      });
    }
  }
  return out;
}

// ---- process exits -----------------------------------------------------------------------------

export interface ExitInfo {
  readonly name: string;
  readonly incarnation: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly expected: boolean;
}

/** A process ends only when the harness ends it. */
export function checkExits(exits: readonly ExitInfo[]): Violation[] {
  return exits
    .filter((e) => !e.expected)
    .map((e) => ({
      check: 'exits' as const,
      message: `${e.name} (start #${e.incarnation}) exited by itself: code ${e.code}, signal ${e.signal}`,
      evidence: e,
    }));
}

// ---- the store ---------------------------------------------------------------------------------

export interface StoredFact {
  readonly id: string;
  readonly stream: string;
  readonly version: number;
  readonly position: number;
  readonly type?: string;
}

/**
 * Read back in store order: each stream's versions are 1, 2, 3… with no gap or repeat, positions
 * only grow, and no event id is stored twice.
 */
export function checkStore(events: readonly StoredFact[]): Violation[] {
  const out: Violation[] = [];
  const last = new Map<string, number>();
  const seen = new Map<string, StoredFact>();
  let lastPosition = 0;
  for (const e of events) {
    const prev = seen.get(e.id);
    if (prev) {
      out.push({
        check: 'store',
        message: `event id ${e.id} stored twice: ${prev.stream} v${prev.version} @${prev.position} and ${e.stream} v${e.version} @${e.position}`,
        ...(launchOfStream(e.stream) ? { launchIds: [launchOfStream(e.stream)!] } : {}),
        evidence: { first: prev, again: e },
      });
    } else seen.set(e.id, e);
    const want = (last.get(e.stream) ?? 0) + 1;
    if (e.version !== want) {
      out.push({
        check: 'store',
        message: `stream ${e.stream}: version ${e.version} at position ${e.position}, expected ${want}`,
        ...(launchOfStream(e.stream) ? { launchIds: [launchOfStream(e.stream)!] } : {}),
        evidence: e,
      });
    }
    last.set(e.stream, Math.max(e.version, last.get(e.stream) ?? 0));
    if (e.position <= lastPosition) {
      out.push({
        check: 'store',
        message: `position ${e.position} (${e.stream} v${e.version}) does not follow ${lastPosition}`,
        evidence: e,
      });
    }
    lastPosition = Math.max(lastPosition, e.position);
  }
  return out;
}

function launchOfStream(stream: string): string | undefined {
  return stream.startsWith('launch.') ? stream.slice('launch.'.length) : undefined;
}
