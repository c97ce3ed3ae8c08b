/**
 * Defensive parsing of what arrives over SSE, for the browser bundle: hand-written guards that
 * mirror the zod schemas of `wire.ts` (zod itself stays out of the bundle). Never throws; anything
 * malformed comes back `undefined` and is ignored by the caller.
 */
import type {
  CapacityView,
  FleetMachine,
  FleetMessage,
  FleetSnapshot,
  LaunchAccepted,
  LaunchReadyTime,
  LaunchTimelineStep,
  LaunchTimesView,
  LaunchView,
  MachineGone,
  RegionTimesView,
} from '../wire.js';
import {
  FAILURE_REASONS,
  LAUNCH_SOURCES,
  LAUNCH_STATUSES,
  MACHINE_SOURCES,
  MACHINE_STATUSES,
  REGION_PATTERN,
} from '../../../machines/vocabulary.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isStr = (v: unknown): v is string => typeof v === 'string';
// zod's int() means a safe integer.
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const oneOf = <T extends string>(v: unknown, allowed: readonly string[]): v is T =>
  isStr(v) && allowed.includes(v);
const optStr = (v: unknown): boolean => v === undefined || isStr(v);

export function asFleetMachine(v: unknown): FleetMachine | undefined {
  if (!isObj(v)) return undefined;
  const { machineId, region, status, source, launchId, createdAt, updatedAt } = v;
  if (
    !isStr(machineId) ||
    !isStr(region) ||
    !isStr(createdAt) ||
    !isStr(updatedAt) ||
    !optStr(launchId)
  )
    return undefined;
  if (!oneOf<FleetMachine['status']>(status, MACHINE_STATUSES)) return undefined;
  if (!oneOf<FleetMachine['source']>(source, MACHINE_SOURCES)) return undefined;
  return {
    machineId,
    region,
    status,
    source,
    createdAt,
    updatedAt,
    ...(isStr(launchId) ? { launchId } : {}),
  };
}

export function asCapacity(v: unknown): CapacityView | undefined {
  if (!isObj(v) || !isInt(v.live) || !isInt(v.limit)) return undefined;
  return { live: v.live, limit: v.limit };
}

/** A snapshot with a malformed machine keeps the well-formed ones: one bad row must not blank the map. */
export function asFleetSnapshot(v: unknown): FleetSnapshot | undefined {
  if (!isObj(v) || !Array.isArray(v.machines) || !isStr(v.at)) return undefined;
  const capacity = asCapacity(v.capacity);
  if (!capacity) return undefined;
  const machines = (v.machines as unknown[]).flatMap((m) => {
    const ok = asFleetMachine(m);
    return ok ? [ok] : [];
  });
  return { machines, capacity, at: v.at };
}

export function asMachineGone(v: unknown): MachineGone | undefined {
  if (!isObj(v) || !isStr(v.machineId) || !isStr(v.at)) return undefined;
  return { machineId: v.machineId, at: v.at };
}

/** Bounds on what a launch-times message may hold (the server sends one entry per region). */
const MAX_REGIONS = 64;
const MAX_STEPS = 16;

function asRegionTimes(v: unknown): RegionTimesView | undefined {
  if (!isObj(v) || !isInt(v.medianMs) || !isInt(v.count)) return undefined;
  return { medianMs: v.medianMs, count: v.count };
}

/** Malformed regions are dropped, the rest kept (as with machines in a snapshot). */
export function asLaunchTimes(v: unknown): LaunchTimesView | undefined {
  if (!isObj(v) || !isObj(v.regions) || !isStr(v.at)) return undefined;
  const regions: Record<string, RegionTimesView> = {};
  for (const [code, t] of Object.entries(v.regions).slice(0, MAX_REGIONS)) {
    const ok = asRegionTimes(t);
    // Region codes only: no key like __proto__ reaches the object.
    if (ok && REGION_PATTERN.test(code)) regions[code] = ok;
  }
  return { regions, at: v.at };
}

function asTimeline(v: unknown): LaunchTimelineStep[] | undefined {
  if (!Array.isArray(v) || v.length > MAX_STEPS) return undefined;
  const out: LaunchTimelineStep[] = [];
  for (const s of v as unknown[]) {
    if (!isObj(s) || !isStr(s.fact) || !isStr(s.at)) return undefined;
    if (!oneOf<LaunchTimelineStep['step']>(s.step, LAUNCH_STATUSES)) return undefined;
    out.push({ step: s.step, fact: s.fact, at: s.at });
  }
  return out;
}

function asReadyTime(v: unknown): LaunchReadyTime | undefined {
  if (!isObj(v) || !isInt(v.ms) || !isInt(v.of)) return undefined;
  const pct = v.fasterThanPct;
  if (pct !== undefined && !(isInt(pct) && pct >= 0 && pct <= 100)) return undefined;
  return { ms: v.ms, ...(pct !== undefined ? { fasterThanPct: pct } : {}), of: v.of };
}

/** An optional part: absent is fine, present must be well-formed (else the view is refused). */
function optional<T>(v: unknown, guard: (v: unknown) => T | undefined): T | undefined | false {
  if (v === undefined) return undefined;
  return guard(v) ?? false;
}

export function asLaunchView(v: unknown): LaunchView | undefined {
  if (!isObj(v)) return undefined;
  const {
    launchId,
    status,
    region,
    source,
    machineId,
    url,
    reason,
    message,
    at,
    requestedAt,
    version,
  } = v;
  if (!isStr(launchId) || !isStr(region) || !isStr(at) || !isStr(requestedAt) || !isInt(version))
    return undefined;
  if (!oneOf<LaunchView['status']>(status, LAUNCH_STATUSES)) return undefined;
  if (!oneOf<LaunchView['source']>(source, LAUNCH_SOURCES)) return undefined;
  if (!optStr(machineId) || !optStr(url) || !optStr(message)) return undefined;
  if (reason !== undefined && !oneOf(reason, FAILURE_REASONS)) return undefined;
  const timeline = optional(v.timeline, asTimeline);
  const readyTime = optional(v.readyTime, asReadyTime);
  if (timeline === false || readyTime === false) return undefined;
  const { traceId, placedIn, fullRegions } = v;
  if (!optStr(traceId) || !optStr(placedIn)) return undefined;
  const full = optional(fullRegions, (x) =>
    Array.isArray(x) && x.length <= 8 && x.every(isStr) ? x : undefined,
  );
  if (full === false) return undefined;
  return {
    launchId,
    status,
    region,
    source,
    at,
    requestedAt,
    version,
    ...(isStr(machineId) ? { machineId } : {}),
    ...(isStr(url) ? { url } : {}),
    ...(reason !== undefined ? { reason: reason as LaunchView['reason'] & string } : {}),
    ...(isStr(message) ? { message } : {}),
    ...(timeline ? { timeline } : {}),
    ...(readyTime ? { readyTime } : {}),
    ...(isStr(traceId) ? { traceId } : {}),
    ...(isStr(placedIn) ? { placedIn } : {}),
    ...(full ? { fullRegions: full } : {}),
  };
}

export function asLaunchAccepted(v: unknown): LaunchAccepted | undefined {
  if (!isObj(v) || !isStr(v.launchId) || !isStr(v.region) || !isStr(v.events)) return undefined;
  if (!oneOf<LaunchAccepted['status']>(v.status, LAUNCH_STATUSES)) return undefined;
  return { launchId: v.launchId, region: v.region, status: v.status, events: v.events };
}

/** The `message` of an error body, when the body is one. */
export function errorMessage(v: unknown): string | undefined {
  return isObj(v) && isStr(v.message) && v.message.length > 0 ? v.message : undefined;
}

function json(text: unknown): unknown {
  if (!isStr(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

type FleetEvent = FleetMessage['event'];
type FleetData<E extends FleetEvent> = Extract<FleetMessage, { event: E }>['data'];

/** The guard of each fleet SSE event: its keys are the events the browser listens for. */
const FLEET_GUARDS: { readonly [E in FleetEvent]: (v: unknown) => FleetData<E> | undefined } = {
  fleet: asFleetSnapshot,
  machine: asFleetMachine,
  machineGone: asMachineGone,
  capacity: asCapacity,
  launchTimes: asLaunchTimes,
};

export const FLEET_EVENTS = Object.keys(FLEET_GUARDS) as readonly FleetEvent[];

/** One fleet SSE message (event name + data text) → a typed message, or undefined if malformed. */
export function parseFleetMessage(event: string, data: unknown): FleetMessage | undefined {
  if (!Object.hasOwn(FLEET_GUARDS, event)) return undefined;
  const d = FLEET_GUARDS[event as FleetEvent](json(data));
  return d && ({ event, data: d } as FleetMessage);
}

/** One `launch` SSE message's data → a launch view, or undefined if malformed. */
export function parseLaunchMessage(data: unknown): LaunchView | undefined {
  return asLaunchView(json(data));
}
