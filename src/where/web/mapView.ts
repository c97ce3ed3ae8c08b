/**
 * Keeps the server-rendered map in step with the fleet: toggles the `live` and `own` classes on
 * region markers, refreshes their accessible names (machine counts, typical launch times), and
 * shows a marker's code on tap.
 */
import { markerTitle, type RegionCount } from '../ui/format.js';
import type { RegionTimesView } from '../wire.js';

export interface MapView {
  /** Regions with machines (others are cleared). Codes not on the map are ignored. */
  setCounts(this: void, counts: readonly RegionCount[]): void;
  /** Typical launch times by region: named in the markers' titles. */
  setTimes(this: void, times: Readonly<Record<string, RegionTimesView>>): void;
  /** Regions where this visitor's own machines live: they pulse. */
  setOwn(this: void, regions: Iterable<string>): void;
  /** The city of a region code, from the map's data; the code itself when unknown. */
  cityOf(this: void, code: string): string;
}

export function bindMap(svg: Element | null): MapView {
  const markers = new Map<string, SVGGElement>();
  let times: Readonly<Record<string, RegionTimesView>> = {};
  for (const g of svg?.querySelectorAll<SVGGElement>('g.region[data-region]') ?? []) {
    const code = g.dataset.region;
    if (code) markers.set(code, g);
  }

  const title = (g: SVGGElement, count: number) => {
    const code = g.dataset.region ?? '';
    const t = g.querySelector('title');
    const text = markerTitle(
      { code, city: g.dataset.city ?? code },
      count,
      g.classList.contains('edge'),
      Object.hasOwn(times, code) ? times[code] : undefined,
    );
    if (t && t.textContent !== text) t.textContent = text;
  };
  const countOf = (g: SVGGElement) => Number(g.dataset.count ?? 0) || 0;

  // Tap (or click) shows one marker's code at a time; tapping elsewhere on the map hides it.
  svg?.addEventListener('click', (e) => {
    const target = (e.target as Element | null)?.closest('g.region');
    for (const g of markers.values()) if (g !== target) g.classList.remove('active');
    target?.classList.toggle('active');
  });

  return {
    setCounts(counts) {
      const byCode = new Map(counts.map((c) => [c.code, c.count]));
      for (const [code, g] of markers) {
        const n = byCode.get(code) ?? 0;
        const was = g.classList.contains('live');
        g.classList.toggle('live', n > 0);
        if (was !== n > 0 || g.dataset.count !== String(n)) {
          g.dataset.count = String(n);
          title(g, n);
        }
      }
    },
    setTimes(next) {
      times = next;
      for (const g of markers.values()) title(g, countOf(g));
    },
    setOwn(regions) {
      const own = new Set(regions);
      for (const [code, g] of markers) g.classList.toggle('own', own.has(code));
    },
    cityOf(code) {
      return markers.get(code)?.dataset.city ?? code;
    },
  };
}
