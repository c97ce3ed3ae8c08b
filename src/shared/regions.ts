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

// Whole-degree coordinates are enough for a dot on a world map.
export const REGIONS: readonly Region[] = [
  { code: 'ams', city: 'Amsterdam', name: 'Amsterdam, Netherlands', lon: 5, lat: 52 },
  { code: 'iad', city: 'Ashburn', name: 'Ashburn, Virginia (US)', lon: -77, lat: 39 },
  { code: 'atl', city: 'Atlanta', name: 'Atlanta, Georgia (US)', lon: -84, lat: 34 },
  { code: 'bog', city: 'Bogotá', name: 'Bogotá, Colombia', lon: -74, lat: 5 },
  { code: 'bos', city: 'Boston', name: 'Boston, Massachusetts (US)', lon: -71, lat: 42 },
  { code: 'otp', city: 'Bucharest', name: 'Bucharest, Romania', lon: 26, lat: 45 },
  { code: 'ord', city: 'Chicago', name: 'Chicago, Illinois (US)', lon: -88, lat: 42 },
  { code: 'dfw', city: 'Dallas', name: 'Dallas, Texas (US)', lon: -97, lat: 33 },
  { code: 'den', city: 'Denver', name: 'Denver, Colorado (US)', lon: -105, lat: 40 },
  { code: 'eze', city: 'Ezeiza', name: 'Ezeiza, Argentina', lon: -59, lat: -35 },
  { code: 'fra', city: 'Frankfurt', name: 'Frankfurt, Germany', lon: 9, lat: 50 },
  { code: 'gdl', city: 'Guadalajara', name: 'Guadalajara, Mexico', lon: -103, lat: 21 },
  { code: 'hkg', city: 'Hong Kong', name: 'Hong Kong, Hong Kong', lon: 114, lat: 22 },
  { code: 'jnb', city: 'Johannesburg', name: 'Johannesburg, South Africa', lon: 28, lat: -26 },
  { code: 'lhr', city: 'London', name: 'London, United Kingdom', lon: 0, lat: 51 },
  { code: 'lax', city: 'Los Angeles', name: 'Los Angeles, California (US)', lon: -118, lat: 34 },
  { code: 'mad', city: 'Madrid', name: 'Madrid, Spain', lon: -4, lat: 40 },
  { code: 'mia', city: 'Miami', name: 'Miami, Florida (US)', lon: -80, lat: 26 },
  { code: 'yul', city: 'Montreal', name: 'Montreal, Canada', lon: -74, lat: 45 },
  { code: 'bom', city: 'Mumbai', name: 'Mumbai, India', lon: 73, lat: 19 },
  { code: 'cdg', city: 'Paris', name: 'Paris, France', lon: 3, lat: 49 },
  { code: 'phx', city: 'Phoenix', name: 'Phoenix, Arizona (US)', lon: -112, lat: 33 },
  { code: 'qro', city: 'Querétaro', name: 'Querétaro, Mexico', lon: -100, lat: 21 },
  { code: 'gig', city: 'Rio de Janeiro', name: 'Rio de Janeiro, Brazil', lon: -43, lat: -23 },
  { code: 'sjc', city: 'San Jose', name: 'San Jose, California (US)', lon: -122, lat: 37 },
  { code: 'scl', city: 'Santiago', name: 'Santiago, Chile', lon: -71, lat: -33 },
  { code: 'gru', city: 'Sao Paulo', name: 'Sao Paulo, Brazil', lon: -46, lat: -23 },
  { code: 'sea', city: 'Seattle', name: 'Seattle, Washington (US)', lon: -122, lat: 47 },
  { code: 'ewr', city: 'Secaucus', name: 'Secaucus, NJ (US)', lon: -74, lat: 41 },
  { code: 'sin', city: 'Singapore', name: 'Singapore, Singapore', lon: 104, lat: 1 },
  { code: 'arn', city: 'Stockholm', name: 'Stockholm, Sweden', lon: 18, lat: 60 },
  { code: 'syd', city: 'Sydney', name: 'Sydney, Australia', lon: 151, lat: -34 },
  { code: 'nrt', city: 'Tokyo', name: 'Tokyo, Japan', lon: 140, lat: 36 },
  { code: 'yyz', city: 'Toronto', name: 'Toronto, Canada', lon: -80, lat: 44 },
  { code: 'waw', city: 'Warsaw', name: 'Warsaw, Poland', lon: 21, lat: 52 },
];

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
