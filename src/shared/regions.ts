/**
 * The Fly.io region table: code, short city name, long name and approximate coordinates.
 * The one place a region code is validated; everything else takes a `RegionCode`.
 */
import { z } from 'zod';

export interface Region {
  readonly code: string;
  readonly city: string;
  readonly name: string;
  readonly lon: number;
  readonly lat: number;
}

// code | city | name | lon | lat. Whole-degree coordinates are enough for a dot on a world map.
const TABLE = `
ams | Amsterdam      | Amsterdam, Netherlands       |    5 |  52
iad | Ashburn        | Ashburn, Virginia (US)       |  -77 |  39
atl | Atlanta        | Atlanta, Georgia (US)        |  -84 |  34
bog | Bogotá         | Bogotá, Colombia             |  -74 |   5
bos | Boston         | Boston, Massachusetts (US)   |  -71 |  42
otp | Bucharest      | Bucharest, Romania           |   26 |  45
ord | Chicago        | Chicago, Illinois (US)       |  -88 |  42
dfw | Dallas         | Dallas, Texas (US)           |  -97 |  33
den | Denver         | Denver, Colorado (US)        | -105 |  40
eze | Ezeiza         | Ezeiza, Argentina            |  -59 | -35
fra | Frankfurt      | Frankfurt, Germany           |    9 |  50
gdl | Guadalajara    | Guadalajara, Mexico          | -103 |  21
hkg | Hong Kong      | Hong Kong, Hong Kong         |  114 |  22
jnb | Johannesburg   | Johannesburg, South Africa   |   28 | -26
lhr | London         | London, United Kingdom       |    0 |  51
lax | Los Angeles    | Los Angeles, California (US) | -118 |  34
mad | Madrid         | Madrid, Spain                |   -4 |  40
mia | Miami          | Miami, Florida (US)          |  -80 |  26
yul | Montreal       | Montreal, Canada             |  -74 |  45
bom | Mumbai         | Mumbai, India                |   73 |  19
cdg | Paris          | Paris, France                |    3 |  49
phx | Phoenix        | Phoenix, Arizona (US)        | -112 |  33
qro | Querétaro      | Querétaro, Mexico            | -100 |  21
gig | Rio de Janeiro | Rio de Janeiro, Brazil       |  -43 | -23
sjc | San Jose       | San Jose, California (US)    | -122 |  37
scl | Santiago       | Santiago, Chile              |  -71 | -33
gru | Sao Paulo      | Sao Paulo, Brazil            |  -46 | -23
sea | Seattle        | Seattle, Washington (US)     | -122 |  47
ewr | Secaucus       | Secaucus, NJ (US)            |  -74 |  41
sin | Singapore      | Singapore, Singapore         |  104 |   1
arn | Stockholm      | Stockholm, Sweden            |   18 |  60
syd | Sydney         | Sydney, Australia            |  151 | -34
nrt | Tokyo          | Tokyo, Japan                 |  140 |  36
yyz | Toronto        | Toronto, Canada              |  -80 |  44
waw | Warsaw         | Warsaw, Poland               |   21 |  52
`;

function parseRow(row: string): Region {
  const [code, city, name, lon, lat] = row.split('|').map((cell) => cell.trim());
  if (!code || !city || !name || lon === undefined || lat === undefined)
    throw new Error(`regions: bad row "${row}"`);
  return { code, city, name, lon: Number(lon), lat: Number(lat) };
}

export const REGIONS: readonly Region[] = TABLE.trim().split('\n').map(parseRow);

const byCode = new Map(REGIONS.map((r) => [r.code, r]));

export const REGION_CODES = REGIONS.map((r) => r.code);

/** A region code from the table. Anything else (an unknown or future region) is rejected at the edge. */
export const regionCode = z
  .string()
  .regex(/^[a-z]{3}$/, 'a region is three lowercase letters')
  .refine((c) => byCode.has(c), { message: 'not a known Fly.io region' });

export function isRegionCode(code: unknown): boolean {
  return typeof code === 'string' && byCode.has(code);
}

export function findRegion(code: string | undefined | null): Region | undefined {
  return code ? byCode.get(code) : undefined;
}

/** The words a visitor reads for a region: the city, or a neutral phrase when we cannot tell. */
export function cityName(code: string | undefined | null): string {
  return findRegion(code)?.city ?? (code ? `an unlisted region (${code})` : 'your computer');
}

/** Great-circle distance in km between two regions (haversine on a sphere; coarse coordinates). */
export function distanceKm(a: Region, b: Region): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * The `n` regions nearest to `code` by great-circle distance, nearest first (ties by code, so the
 * order is stable): where a launch goes when its own region has no capacity. Empty for an unknown
 * region.
 */
export function nearestRegions(code: string, n: number): string[] {
  const from = findRegion(code);
  if (!from) return [];
  return REGIONS.filter((r) => r.code !== code)
    .map((r) => ({ code: r.code, km: distanceKm(from, r) }))
    .sort((x, y) => x.km - y.km || x.code.localeCompare(y.code))
    .slice(0, n)
    .map((r) => r.code);
}
