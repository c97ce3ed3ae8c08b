/**
 * The page configuration the server embeds as a JSON island (`#wm-config`) and the browser reads:
 * endpoints, delays (tests shorten them) and the words shown for failures.
 */

export interface Timing {
  /** After a failure, the button returns to idle this much later (default 5 s). */
  readonly failureResetMs: number;
  /** After a success, the button returns to idle this much later (default 20 s). */
  readonly successResetMs: number;
  /** Pause between "ready" and leaving for the machine (default 0.5 s). */
  readonly redirectDelayMs: number;
}

export const DEFAULT_TIMING: Timing = {
  failureResetMs: 5_000,
  successResetMs: 20_000,
  redirectDelayMs: 500,
};

export interface PageConfig {
  readonly endpoints: { readonly launches: string; readonly events: string };
  readonly timing: Timing;
  /** Words per failure reason (FAILURE_WORDS on the server). */
  readonly failureWords: Readonly<Record<string, string>>;
  /** Link to a machine, with `{id}` where the machine id goes (dashboard). */
  readonly machineUrl?: string;
  readonly edgeRegion?: string;
}

export const CONFIG_ELEMENT_ID = 'wm-config';

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' && v.length > 0 ? v : fallback;
}

/** Reads the island defensively: anything missing or malformed falls back to defaults. */
export function parseConfig(text: string | null | undefined): PageConfig {
  let raw: unknown;
  try {
    raw = text ? JSON.parse(text) : {};
  } catch {
    raw = {};
  }
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const ep = (typeof o.endpoints === 'object' && o.endpoints !== null ? o.endpoints : {}) as Record<
    string,
    unknown
  >;
  const tm = (typeof o.timing === 'object' && o.timing !== null ? o.timing : {}) as Record<
    string,
    unknown
  >;
  const words: Record<string, string> = {};
  if (typeof o.failureWords === 'object' && o.failureWords !== null) {
    for (const [k, v] of Object.entries(o.failureWords)) if (typeof v === 'string') words[k] = v;
  }
  return {
    endpoints: { launches: str(ep.launches, '/launches'), events: str(ep.events, '/events') },
    timing: {
      failureResetMs: positive(tm.failureResetMs, DEFAULT_TIMING.failureResetMs),
      successResetMs: positive(tm.successResetMs, DEFAULT_TIMING.successResetMs),
      redirectDelayMs: positive(tm.redirectDelayMs, DEFAULT_TIMING.redirectDelayMs),
    },
    failureWords: words,
    ...(typeof o.machineUrl === 'string' ? { machineUrl: o.machineUrl } : {}),
    ...(typeof o.edgeRegion === 'string' ? { edgeRegion: o.edgeRegion } : {}),
  };
}

/** A machine's link from the template; the id is URL-encoded so it cannot change the URL's shape. */
export function machineLink(template: string | undefined, machineId: string): string | undefined {
  if (!template) return undefined;
  return template.split('{id}').join(encodeURIComponent(machineId));
}
