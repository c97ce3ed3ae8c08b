/**
 * The checks on what a chaos run leaves behind, once everything is stopped: its log files, its
 * processes' exits, and the stored events read back. Pure, like the checks in checks.ts.
 */
import type { Violation } from './checks.js';

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
