/**
 * The world map: an inline SVG of Natural Earth land (world-atlas 110m) in the Equal Earth
 * projection, with a marker for every region of the table. Geography is drawn once and cached.
 */
import { createRequire } from 'node:module';
import { geoEqualEarth, geoGraticule, geoPath } from 'd3-geo';
import type { GeoPermissibleObjects } from 'd3-geo';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import { REGIONS } from '../../shared/regions.js';
import { markerTitle } from '../ui/format.js';
import type { RegionTimesView } from '../wire.js';
import { markup, raw, type SafeHtml } from './html.js';

/** The map's user-space width; height is cropped just below Tierra del Fuego (no Antarctica). */
export const MAP_WIDTH = 1000;
export const MAP_HEIGHT = 440;

// Geometry is quantised to half a user unit: invisible at any screen size, and it keeps the
// path data small (about 18 kB for the whole land outline).
const QUANT = 2;

const projection = geoEqualEarth().fitWidth(MAP_WIDTH, { type: 'Sphere' });

/**
 * (lon, lat) → (x, y) in map user units, rounded to 0.1. The same function places every marker,
 * on the server and (through the data attributes it fills) in the browser.
 */
export function project(lon: number, lat: number): [number, number] | undefined {
  if (!Number.isFinite(lon) || !Number.isFinite(lat) || Math.abs(lat) > 90 || Math.abs(lon) > 180)
    return undefined;
  const p = projection([lon, lat]);
  if (!p) return undefined;
  return [Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10];
}

export interface RegionPoint {
  readonly code: string;
  readonly city: string;
  readonly name: string;
  readonly x: number;
  readonly y: number;
}

/** Every region of the table with its projected position (table order). */
export const REGION_POINTS: readonly RegionPoint[] = REGIONS.flatMap((r) => {
  const xy = project(r.lon, r.lat);
  return xy ? [{ code: r.code, city: r.city, name: r.name, x: xy[0], y: xy[1] }] : [];
});

const pointByCode = new Map(REGION_POINTS.map((p) => [p.code, p]));

/** The projected point of a region code, or undefined for codes not in the table. */
export function regionPoint(code: string): RegionPoint | undefined {
  return pointByCode.get(code);
}

/**
 * Encodes projected lines as compact SVG path data: absolute start, then relative integer steps
 * (`l` with implicit repeats), duplicates dropped. Coordinates are in QUANT-scaled units.
 */
function encodePath(
  object: GeoPermissibleObjects,
  keep: (ring: number[][]) => boolean = () => true,
): string {
  const rings: { pts: number[][]; closed: boolean }[] = [];
  let current: { pts: number[][]; closed: boolean } | undefined;
  const context = {
    moveTo(x: number, y: number) {
      current = { pts: [[x, y]], closed: false };
      rings.push(current);
    },
    lineTo(x: number, y: number) {
      current?.pts.push([x, y]);
    },
    closePath() {
      if (current) current.closed = true;
    },
    arc() {},
  };
  geoPath(projection, context as unknown as CanvasRenderingContext2D)(object);
  let out = '';
  for (const ring of rings) {
    if (!keep(ring.pts)) continue;
    const q = ring.pts.map(
      ([x = 0, y = 0]) => [Math.round(x * QUANT), Math.round(y * QUANT)] as const,
    );
    const [sx, sy] = q[0] ?? [0, 0];
    let px = sx;
    let py = sy;
    let steps = '';
    let n = 0;
    for (const [x, y] of q.slice(1)) {
      if (x === px && y === py) continue;
      const dx = String(x - px);
      const dy = String(y - py);
      steps +=
        (n === 0 || dx.startsWith('-') ? '' : ' ') + dx + (dy.startsWith('-') ? '' : ' ') + dy;
      px = x;
      py = y;
      n++;
    }
    if (n < (ring.closed ? 2 : 1)) continue;
    out += `M${sx} ${sy}l${steps}${ring.closed ? 'z' : ''}`;
  }
  return out;
}

interface Geography {
  sphere: string;
  graticule: string;
  land: string;
}

let geography: Geography | undefined;

/** The static layers, computed on first use and cached for the life of the process. */
function getGeography(): Geography {
  if (geography) return geography;
  const require = createRequire(import.meta.url);
  // world-atlas ships plain JSON without an exports map: load it through require.
  const world = require('world-atlas/land-110m.json') as Topology<{ land: GeometryCollection }>;
  const land = feature(world, world.objects.land);
  const cropY = MAP_HEIGHT;
  geography = {
    sphere: encodePath({ type: 'Sphere' }),
    graticule: encodePath(geoGraticule().step([30, 30])()),
    // Rings entirely below the crop line (Antarctica) would be invisible bytes.
    land: encodePath(land, (pts) => pts.some(([, y = 0]) => y < cropY)),
  };
  return geography;
}

export interface MapMachine {
  readonly region: string;
}

export interface MapModel {
  /** The visitor's Fly.io edge region (Fly-Region header), if any. */
  readonly edgeRegion?: string | undefined;
  /** Live machines: their regions are highlighted. Unknown region codes are ignored here. */
  readonly machines: readonly MapMachine[];
  /** Regions of this visitor's own machines: these pulse. */
  readonly ownRegions?: readonly string[];
  /** Accessible name of the map. */
  readonly label?: string;
  /** Typical launch times by region code: named in each marker's title. */
  readonly times?: Readonly<Record<string, RegionTimesView>>;
}

/** Counts machines per region code (any string, table or not). */
export function countByRegion(machines: readonly MapMachine[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of machines) counts.set(m.region, (counts.get(m.region) ?? 0) + 1);
  return counts;
}

function marker(
  point: RegionPoint,
  count: number,
  edge: boolean,
  own: boolean,
  times: RegionTimesView | undefined,
): SafeHtml {
  const classes = ['region', edge && 'edge', count > 0 && 'live', own && 'own']
    .filter(Boolean)
    .join(' ');
  return markup`<g class="${classes}" id="region-${point.code}" data-region="${point.code}" data-city="${point.city}" data-x="${point.x}" data-y="${point.y}" data-count="${count}" transform="translate(${point.x} ${point.y})" tabindex="0" role="img"><title>${markerTitle(point, count, edge, times)}</title><circle class="hit" r="13"/><circle class="halo" r="9"/><circle class="pulse" r="9"/>${edge ? raw('<circle class="ring" r="12"/>') : ''}<circle class="dot" r="3.5"/><text class="code" y="-17">${point.code}</text></g>`;
}

/**
 * The whole `<svg>`: sphere, graticule, land, then one marker per region. The edge region gets a
 * ring and a permanent label; regions with machines get the `live` class; own machines `own`.
 */
export function renderMap(model: MapModel): SafeHtml {
  const geo = getGeography();
  const counts = countByRegion(model.machines);
  const own = new Set(model.ownRegions ?? []);
  const times = (code: string) =>
    model.times && Object.hasOwn(model.times, code) ? model.times[code] : undefined;
  const edgePoint = model.edgeRegion ? regionPoint(model.edgeRegion) : undefined;
  // The edge region is drawn last so its ring and label sit on top of its neighbours.
  const ordered = [...REGION_POINTS].sort(
    (a, b) => Number(a === edgePoint) - Number(b === edgePoint),
  );
  const markers = ordered.map((p) =>
    marker(p, counts.get(p.code) ?? 0, p === edgePoint, own.has(p.code), times(p.code)),
  );
  const edgeLabel = edgePoint
    ? markup`<text class="edge-label" x="${edgePoint.x}" y="${edgePoint.y + 34}" aria-hidden="true">${edgePoint.city}</text>`
    : '';
  const label = model.label ?? 'World map of Fly.io regions';
  return markup`<svg class="map" id="region-map" viewBox="0 0 ${MAP_WIDTH} ${MAP_HEIGHT}" role="group" aria-labelledby="map-title" xmlns="http://www.w3.org/2000/svg"><title id="map-title">${label}</title><g transform="scale(${1 / QUANT})" aria-hidden="true"><path class="sphere" d="${raw(geo.sphere)}"/><path class="graticule" d="${raw(geo.graticule)}"/><path class="land" d="${raw(geo.land)}"/></g><g class="regions">${markers}</g>${edgeLabel}</svg>`;
}
