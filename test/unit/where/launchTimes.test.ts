/** Launch times per region: the median of the last 50, the ring, "faster than", the UTC day, bounds. */
import { describe, expect, it } from 'vitest';
import {
  DAY_LAUNCHES,
  LaunchTimesStats,
  RECENT_LAUNCHES,
  median,
  utcDay,
} from '../../../src/where/services/launchTimes.js';
import {
  comparisonText,
  formatSeconds,
  timelineItems,
  timelineText,
  typicalText,
} from '../../../src/where/ui/launchTimes.js';

const DAY = 86_400_000;
const NOON = Date.parse('2025-03-10T12:00:00.000Z');
let n = 0;
const ready = (region: string, ms: number, at = NOON + n) => ({
  launchId: `L${String(n++).padStart(6, '0')}`,
  region,
  ms,
  at,
});

describe('LaunchTimesStats', () => {
  it('the typical time is the median of the region’s ready launches, per region', () => {
    const s = new LaunchTimesStats();
    expect(s.typical('syd')).toBeUndefined();
    for (const ms of [3000, 1000, 2000]) s.add(ready('syd', ms));
    s.add(ready('fra', 900));
    expect(s.typical('syd')).toEqual({ medianMs: 2000, count: 3 });
    s.add(ready('syd', 5000));
    expect(s.typical('syd')).toEqual({ medianMs: 2500, count: 4 });
    expect(s.all()).toEqual({
      fra: { medianMs: 900, count: 1 },
      syd: { medianMs: 2500, count: 4 },
    });
    expect(median([])).toBe(0);
    expect(median([1, 2])).toBe(2); // 1.5 rounds to whole ms
  });

  it('keeps only the last 50 by ready time: the oldest leaves, a late older one does not enter', () => {
    const s = new LaunchTimesStats();
    const t0 = NOON;
    // 50 slow launches, then 50 fast ones: the slow ones all leave the ring.
    for (let i = 0; i < RECENT_LAUNCHES; i++) s.add(ready('syd', 9000, t0 + i));
    expect(s.typical('syd')).toEqual({ medianMs: 9000, count: 50 });
    for (let i = 0; i < RECENT_LAUNCHES; i++) s.add(ready('syd', 1000, t0 + 1000 + i));
    expect(s.typical('syd')).toEqual({ medianMs: 1000, count: 50 });
    // Older than every launch in the ring: counted for the day, not for "typical".
    expect(s.add(ready('syd', 60_000, t0 - 1))).toBe(true);
    expect(s.typical('syd')).toEqual({ medianMs: 1000, count: 50 });
  });

  it('does not depend on the order facts arrive in, and counts a launch once', () => {
    const launches = Array.from({ length: 80 }, (_, i) => ready('ams', 500 + ((i * 37) % 90) * 10));
    const a = new LaunchTimesStats();
    const b = new LaunchTimesStats();
    for (const l of launches) a.add(l);
    for (const l of [...launches].reverse()) b.add(l);
    expect(a.typical('ams')).toEqual(b.typical('ams'));
    expect(a.add(launches[79]!)).toBe(false);
    expect(a.add(launches[0]!)).toBe(false); // still in today's list
    expect(a.typical('ams')).toEqual(b.typical('ams'));
  });

  it('"faster than": the share of the region’s other launches that day that took longer', () => {
    const s = new LaunchTimesStats();
    for (const ms of [1000, 2000, 4000, 5000, 6000, 7000, 8000, 9000, 9500, 9900]) {
      s.add(ready('syd', ms));
    }
    const mine = ready('syd', 3100);
    s.add(mine);
    expect(s.compare(mine)).toEqual({ fasterThanPct: 80, of: 10 });
    expect(comparisonText({ ms: 3100, ...s.compare(mine) }, 'Sydney')).toBe(
      'ready in 3.1 s — faster than 80 % of launches in Sydney today',
    );
    // Equal times are not "slower"; rounded down, so never 100 % unless every one was slower.
    const tie = ready('syd', 9900);
    s.add(tie);
    expect(s.compare(tie)).toEqual({ fasterThanPct: 0, of: 11 });
    const first = ready('nrt', 1234);
    s.add(first);
    expect(s.compare(first)).toEqual({ of: 0 });
    expect(comparisonText({ ms: 1234, of: 0 }, 'Tokyo')).toBe(
      'ready in 1.2 s — the first launch in Tokyo today',
    );
  });

  it('a new UTC day starts an empty comparison; the typical time carries over', () => {
    const s = new LaunchTimesStats();
    const lateToday = Date.parse('2025-03-10T23:59:59.000Z');
    for (const ms of [1000, 2000, 3000]) s.add(ready('fra', ms, lateToday));
    const tomorrow = ready('fra', 5000, lateToday + 2000);
    expect(utcDay(tomorrow.at)).toBe(utcDay(lateToday) + 1);
    s.add(tomorrow);
    expect(s.compare(tomorrow)).toEqual({ of: 0 });
    expect(s.typical('fra')).toEqual({ medianMs: 2500, count: 4 });
    // A straggler from yesterday changes the ring, not today's comparison.
    s.add(ready('fra', 100, lateToday));
    expect(s.compare(tomorrow)).toEqual({ of: 0 });
    const next = ready('fra', 1000, lateToday + 3000);
    s.add(next);
    expect(s.compare(next)).toEqual({ fasterThanPct: 100, of: 1 });
    // A launch of a day the region no longer holds compares with nothing.
    expect(s.compare(ready('fra', 10, lateToday - DAY))).toEqual({ of: 0 });
  });

  it('stays bounded: at most 50 recent and DAY_LAUNCHES per region and day, the oldest first out', () => {
    const s = new LaunchTimesStats({ recent: 5, day: 20 });
    for (let i = 0; i < 100; i++) s.add(ready('gru', 100 * (i + 1)));
    const st = s.state().gru!;
    expect(st.recent).toHaveLength(5);
    expect(st.today).toHaveLength(20);
    expect(st.today[0]!.ms).toBe(8100);
    const real = new LaunchTimesStats();
    for (let i = 0; i < DAY_LAUNCHES + 500; i++) real.add(ready('gru', 1000 + i));
    expect(real.state().gru!.today).toHaveLength(DAY_LAUNCHES);
    expect(real.state().gru!.recent).toHaveLength(RECENT_LAUNCHES);
  });

  it('saves as plain data and restores to the same numbers', () => {
    const s = new LaunchTimesStats();
    for (const ms of [1200, 800, 3300, 2100]) s.add(ready('ams', ms));
    const copy = new LaunchTimesStats();
    copy.restore(JSON.parse(JSON.stringify(s.state())) as ReturnType<typeof s.state>);
    expect(copy.all()).toEqual(s.all());
    const probe = ready('ams', 2000);
    expect(copy.compare(probe)).toEqual(s.compare(probe));
  });

  it('ignores nonsense durations', () => {
    const s = new LaunchTimesStats();
    expect(s.add(ready('ams', -5))).toBe(false);
    expect(s.add(ready('ams', NaN))).toBe(false);
    expect(s.typical('ams')).toBeUndefined();
  });
});

describe('launch-time words', () => {
  it('seconds with tenths, the typical line, and a timeline of facts', () => {
    expect(formatSeconds(2449)).toBe('2.4 s');
    expect(formatSeconds(-1)).toBe('0.0 s');
    expect(typicalText({ medianMs: 2400, count: 50 })).toBe('typical 2.4 s (last 50)');
    const t0 = '2025-03-10T12:00:00.000Z';
    const at = (ms: number) => new Date(Date.parse(t0) + ms).toISOString();
    const items = timelineItems(
      [
        { step: 'requested', fact: 'launch.requested', at: t0 },
        { step: 'created', fact: 'fly.machineCreated', at: at(1200) },
        { step: 'started', fact: 'fly.machineObserved', at: at(1400) },
        { step: 'ready', fact: 'vm.listening', at: at(1700) },
      ],
      t0,
    );
    expect(timelineText(items)).toBe(
      'requested → created 1.2 s → started 1.4 s → VM listening 1.7 s → ready',
    );
  });
});
