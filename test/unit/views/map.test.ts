import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { REGIONS } from '../../../src/shared/regions.js';
import {
  MAP_HEIGHT,
  MAP_WIDTH,
  REGION_POINTS,
  project,
  regionPoint,
  renderMap,
} from '../../../src/where/views/map.js';

/** Parses the marker groups out of the SVG string: class list per region code. */
function markers(svg: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of svg.matchAll(/<g class="([^"]*)" id="region-([a-z]+)"/g))
    out.set(m[2]!, m[1]!.split(' '));
  return out;
}

describe('map projection', () => {
  it('is deterministic and lands inside the map', () => {
    for (const r of REGIONS) {
      const a = project(r.lon, r.lat);
      const b = project(r.lon, r.lat);
      expect(a).toEqual(b);
      const [x, y] = a!;
      expect(x).toBeGreaterThan(0);
      expect(x).toBeLessThan(MAP_WIDTH);
      expect(y).toBeGreaterThan(0);
      expect(y).toBeLessThan(MAP_HEIGHT);
    }
  });

  it('puts the west on the left and the north at the top', () => {
    const lax = regionPoint('lax')!;
    const nrt = regionPoint('nrt')!;
    const syd = regionPoint('syd')!;
    const arn = regionPoint('arn')!;
    expect(lax.x).toBeLessThan(nrt.x);
    expect(arn.y).toBeLessThan(syd.y);
    // Equal Earth keeps the prime meridian in the middle.
    expect(project(0, 0)![0]).toBeCloseTo(MAP_WIDTH / 2, 1);
  });

  it('refuses coordinates off the globe instead of drawing nonsense', () => {
    expect(project(-190, 0)).toBeUndefined();
    expect(project(0, 95)).toBeUndefined();
    expect(project(Number.NaN, 0)).toBeUndefined();
  });

  it('has a point for every region in the table', () => {
    expect(REGION_POINTS.map((p) => p.code).sort()).toEqual(REGIONS.map((r) => r.code).sort());
    expect(regionPoint('nope')).toBeUndefined();
  });
});

describe('renderMap', () => {
  const fleet = [{ region: 'nrt' }, { region: 'nrt' }, { region: 'gru' }];

  it('draws a marker for every region, with the projected position in data attributes', () => {
    const svg = renderMap({ machines: [] }).toString();
    const found = markers(svg);
    expect([...found.keys()].sort()).toEqual(REGIONS.map((r) => r.code).sort());
    for (const p of REGION_POINTS) {
      expect(svg).toContain(
        `data-region="${p.code}" data-city="${p.city}" data-x="${p.x}" data-y="${p.y}"`,
      );
    }
    // Each marker has an accessible name and a code label.
    expect(svg.match(/<title>[^<]+\([a-z]{3}\)/g)).toHaveLength(REGIONS.length);
    expect(svg.match(/<text class="code"/g)).toHaveLength(REGIONS.length);
  });

  it('marks the edge region distinctly and names it', () => {
    const svg = renderMap({ edgeRegion: 'fra', machines: [] }).toString();
    const found = markers(svg);
    expect(found.get('fra')).toContain('edge');
    expect([...found].filter(([, c]) => c.includes('edge'))).toHaveLength(1);
    expect(svg).toContain('class="edge-label"');
    expect(svg).toMatch(/<text class="edge-label"[^>]*>Frankfurt<\/text>/);
    expect(svg).toContain('Frankfurt (fra) · your edge region');
  });

  it('highlights exactly the regions with machines and counts them in the name', () => {
    const svg = renderMap({ machines: fleet }).toString();
    const live = [...markers(svg)].filter(([, c]) => c.includes('live')).map(([code]) => code);
    expect(live.sort()).toEqual(['gru', 'nrt']);
    expect(svg).toContain('Tokyo (nrt) · 2 Useless Machines running');
    expect(svg).toContain('Sao Paulo (gru) · 1 Useless Machine running');
  });

  it('pulses the visitor’s own regions', () => {
    const svg = renderMap({ machines: fleet, ownRegions: ['gru'] }).toString();
    const own = [...markers(svg)].filter(([, c]) => c.includes('own')).map(([code]) => code);
    expect(own).toEqual(['gru']);
  });

  it('never crashes on unknown or hostile region codes', () => {
    const hostile = [
      'xyz',
      '',
      '"><script>alert(1)</script>',
      'unknown',
      'FRA',
      '__proto__',
      'constructor',
    ];
    for (const code of hostile) {
      const svg = renderMap({
        edgeRegion: code,
        machines: [{ region: code }],
        ownRegions: [code],
      }).toString();
      expect(svg).not.toContain('<script>');
      expect(markers(svg).size).toBe(REGIONS.length);
      expect(
        [...markers(svg)].some(
          ([, c]) => c.includes('edge') || c.includes('live') || c.includes('own'),
        ),
      ).toBe(false);
    }
  });

  it('is computed once and stays small', () => {
    const a = renderMap({ machines: [] }).toString();
    const b = renderMap({ machines: [] }).toString();
    expect(a).toBe(b);
    expect(a.length).toBeLessThan(45_000);
    expect(gzipSync(a).length).toBeLessThan(12_000);
    expect(a).toMatch(/^<svg [^>]*viewBox="0 0 1000 440"/);
  });
});
