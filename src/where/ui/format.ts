/**
 * Pure text formatting shared by the server views and the browser bundle (no DOM, no clock):
 * elapsed times, ages, machine counts, the list of regions with machines, and the words both
 * renderings of a chip or a table row use, so the server's HTML and the script's DOM agree.
 */
import type { RegionTimesView } from '../wire.js';
import { typicalText } from './launchTimes.js';

/** `m:ss.t`, e.g. 3 412 ms → `0:03.4`. Negative or non-finite input shows `0:00.0`. */
export function formatElapsed(ms: number): string {
  const tenths = Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 100) : 0;
  const minutes = Math.floor(tenths / 600);
  const seconds = Math.floor((tenths % 600) / 10);
  return `${minutes}:${String(seconds).padStart(2, '0')}.${tenths % 10}`;
}

/** A coarse age for a table cell: `12 s`, `4 min 05 s`, `2 h 03 min`. */
export function formatAge(ms: number): string {
  const s = Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** How long until a moment: `in 12 s`, `now` once it has passed. */
export function formatCountdown(ms: number): string {
  return ms <= 0 || !Number.isFinite(ms) ? 'now' : `in ${formatAge(ms)}`;
}

/** `1 machine`, `3 machines`. */
export function machines(n: number): string {
  return n === 1 ? '1 machine' : `${n} machines`;
}

export interface RegionCount {
  readonly code: string;
  readonly count: number;
}

/** Region codes with their machine counts, sorted by code; a stable order for text and tests. */
export function regionCounts(regions: Iterable<string>): RegionCount[] {
  const counts = new Map<string, number>();
  for (const r of regions) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([code, count]) => ({ code, count }));
}

/** Milliseconds of an ISO timestamp, or undefined when it does not parse. */
export function parseTime(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * A region marker's accessible name: `Frankfurt (fra) · your edge region · 2 Useless Machines
 * running · typical 2.4 s (last 50)` (the last part once the region has timed launches).
 */
export function markerTitle(
  point: { readonly city: string; readonly code: string },
  count: number,
  edge: boolean,
  times?: RegionTimesView,
): string {
  const parts = [`${point.city} (${point.code})`];
  if (edge) parts.push('your edge region');
  parts.push(
    count === 0
      ? 'no machines'
      : count === 1
        ? '1 Useless Machine running'
        : `${count} Useless Machines running`,
  );
  if (times) parts.push(typicalText(times));
  return parts.join(' · ');
}

/** `3 of 8 machine slots in use`, or a neutral phrase before we know. */
export function capacityText(
  cap: { readonly live: number; readonly limit: number } | undefined,
): string {
  if (!cap) return 'Machine slots: unknown';
  return `${cap.live} of ${cap.limit} machine ${cap.limit === 1 ? 'slot' : 'slots'} in use`;
}

/** The region chips when no region has a machine. */
export const NO_MACHINES_TEXT = 'none right now';

/** A region chip's count: `×3` for several machines, nothing for one. */
export function chipCount(count: number): string | undefined {
  return count > 1 ? `×${count}` : undefined;
}

/** The machine table's only row when there are none. */
export const NO_MACHINE_ROWS_TEXT = 'No machines right now.';

/** A machine's age at `nowMs` for its table cell, or `?` when its creation time does not parse. */
export function machineAge(createdAt: string | undefined, nowMs: number): string {
  const created = parseTime(createdAt);
  return created === undefined ? '?' : formatAge(nowMs - created);
}
