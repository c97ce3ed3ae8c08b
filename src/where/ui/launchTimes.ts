/**
 * The words of launch times, shared by the server's HTML and the browser's DOM (no DOM, no clock):
 * a region's typical time, how one launch compared, and one launch's timeline of facts.
 */
import type { LaunchReadyTime, LaunchTimelineStep, RegionTimesView } from '../wire.js';

/** `2.4 s` (tenths, rounded); `0.0 s` for nonsense. */
export function formatSeconds(ms: number): string {
  const s = Number.isFinite(ms) && ms > 0 ? Math.round(ms / 100) / 10 : 0;
  return `${s.toFixed(1)} s`;
}

/** `typical 2.4 s (last 50)`: the median of the region's last ready launches. */
export function typicalText(t: RegionTimesView): string {
  return `typical ${formatSeconds(t.medianMs)} (last ${t.count})`;
}

/** A dashboard tile's line beside its button: the typical time, or that none was timed yet. */
export function tileTimesText(t: RegionTimesView | undefined): string {
  return t ? typicalText(t) : 'no launch timed yet';
}

/** The launch panel's line about the region a launch goes to. */
export function regionTimesSentence(city: string, t: RegionTimesView | undefined): string {
  return t ? `Launches in ${city}: ${typicalText(t)}.` : `No launch in ${city} has been timed yet.`;
}

/** `ready in 3.1 s — faster than 70 % of launches in Sydney today`. */
export function comparisonText(r: LaunchReadyTime, city: string): string {
  const lead = `ready in ${formatSeconds(r.ms)}`;
  if (r.fasterThanPct === undefined) return `${lead} — the first launch in ${city} today`;
  return `${lead} — faster than ${r.fasterThanPct} % of launches in ${city} today`;
}

/** The sentence under a ready launch: `Your machine was ready in 3.1 s — faster than …`. */
export function readyTimeSentence(r: LaunchReadyTime, city: string): string {
  return `Your machine was ${comparisonText(r, city)}.`;
}

/** What each status is called on a timeline, after the fact that reached it. */
const STEP_WORDS: Record<LaunchTimelineStep['step'], string> = {
  requested: 'requested',
  created: 'created',
  started: 'started',
  ready: 'VM listening',
  failed: 'failed',
  done: 'switched off',
};

export interface TimelineItem {
  readonly label: string;
  /** Time since the request: `1.2 s` (absent on the request itself and on "ready"). */
  readonly after?: string;
  /** The fact's type and time, for the markup's data attribute and `<time>`. */
  readonly fact?: string;
  readonly at?: string;
}

/**
 * `requested → created 1.2 s → started 1.4 s → VM listening 1.7 s → ready`: one item per step,
 * "ready" right after the fact that made the launch ready.
 */
export function timelineItems(
  steps: readonly LaunchTimelineStep[],
  requestedAt: string,
): TimelineItem[] {
  const parseTime = (iso: string) => {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? undefined : t;
  };
  const t0 = parseTime(requestedAt);
  const out: TimelineItem[] = [];
  for (const s of steps) {
    const t = parseTime(s.at);
    const after =
      s.step === 'requested' || t === undefined || t0 === undefined
        ? undefined
        : formatSeconds(t - t0);
    out.push({ label: STEP_WORDS[s.step], fact: s.fact, at: s.at, ...(after ? { after } : {}) });
    if (s.step === 'ready') out.push({ label: 'ready' });
  }
  return out;
}

/** The timeline as one line of text (what a screen reader or a test reads). */
export function timelineText(items: readonly TimelineItem[]): string {
  return items.map((i) => (i.after ? `${i.label} ${i.after}` : i.label)).join(' → ');
}

/**
 * Where a launch's machine went when its region was full ("Sydney is full — your machine is in
 * Singapore."), or, while it is still looking, which regions were full so far; undefined when
 * nothing was full.
 */
export function placementSentence(
  view: {
    readonly region: string;
    readonly placedIn?: string;
    readonly fullRegions?: readonly string[];
  },
  cityOf: (code: string) => string,
): string | undefined {
  const full = view.fullRegions ?? [];
  if (full.length === 0 && !view.placedIn) return undefined;
  const names = (full.length > 0 ? full : [view.region]).map(cityOf);
  const listed =
    names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
  const verb = names.length === 1 ? 'is' : 'are';
  if (view.placedIn) return `${listed} ${verb} full — your machine is in ${cityOf(view.placedIn)}.`;
  return `${listed} ${verb} full — trying the nearest region.`;
}
