/**
 * Label values of the landing app's metrics (ADR 0016). Labels stay bounded: regions from the known
 * list, sources and callback results from fixed sets, never an id or free text.
 */
import { isRegionCode } from '../shared/regions.js';
import { LAUNCH_SOURCES } from '../../machines/vocabulary.js';

/** A region label: a known region code, else `other` (so a label never carries free text). */
export function regionLabel(region: unknown): string {
  return typeof region === 'string' && isRegionCode(region) ? region : 'other';
}

/** A source label: one of the three the facts know, else `other`. */
export function sourceLabel(source: unknown): string {
  return (LAUNCH_SOURCES as readonly unknown[]).includes(source) ? (source as string) : 'other';
}

const CALLBACK_RESULTS: Record<string, string> = {
  SIGNATURE_MISSING: 'forged',
  SIGNATURE_MALFORMED: 'forged',
  SIGNATURE_INVALID: 'forged',
  SIGNATURE_EXPIRED: 'stale',
  CALLBACK_REPLAYED: 'replayed',
  LAUNCH_NOT_FOUND: 'unknown',
  LAUNCH_GONE: 'unknown',
  MACHINE_MISMATCH: 'mismatch',
  BAD_JSON: 'malformed',
  BAD_CALLBACK: 'malformed',
  BAD_REGION: 'malformed',
};

/** The `result` label of a refused callback, from its error code (anything else: `error`). */
export function callbackResult(code: string): string {
  return CALLBACK_RESULTS[code] ?? 'error';
}

/**
 * A labelled metric's children kept by a key of their label values, so a hot path (every append,
 * every Fly call, every launch change) skips prom-client's per-call label hashing. Bounded like the
 * labels themselves (regions from the known list, actions, statuses).
 */
export function childrenByKey<T>(make: (key: string) => T): (key: string) => T {
  const children = new Map<string, T>();
  return (key) => {
    let child = children.get(key);
    if (child === undefined) {
      child = make(key);
      children.set(key, child);
    }
    return child;
  };
}
