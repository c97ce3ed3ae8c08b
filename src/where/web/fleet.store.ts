/**
 * The browser's picture of the fleet: an `@xstate/store` holding every live machine by id and the
 * capacity, fed by the fleet SSE. Reducers are pure and total; selectors drive the DOM.
 */
import { createStore } from '@xstate/store';
import type {
  CapacityView,
  FleetMachine,
  FleetSnapshot,
  LaunchTimesView,
  MachineGone,
  RegionTimesView,
} from '../wire.js';
import { parseTime, regionCounts, type RegionCount } from '../ui/format.js';

export interface FleetContext {
  readonly machines: Readonly<Record<string, FleetMachine>>;
  readonly capacity: CapacityView | undefined;
  /** Server clock minus client clock (ms), estimated from the latest message that carries `at`. */
  readonly clockOffsetMs: number;
  /** True once a full `fleet` snapshot has arrived. */
  readonly synced: boolean;
  /** Typical launch times by region (the latest `launchTimes` message; undefined before one). */
  readonly launchTimes?: Readonly<Record<string, RegionTimesView>> | undefined;
}

export const EMPTY_FLEET: FleetContext = {
  machines: {},
  capacity: undefined,
  clockOffsetMs: 0,
  synced: false,
};

function offset(at: string, receivedAt: number | undefined, previous: number): number {
  const t = parseTime(at);
  return t === undefined || receivedAt === undefined ? previous : t - receivedAt;
}

/** The store's transitions, exported so tests can run them as plain functions. */
export const fleetTransitions = {
  /** A full picture: replaces everything (sent on every (re)connect). */
  fleet(ctx: FleetContext, ev: { snapshot: FleetSnapshot; receivedAt?: number }): FleetContext {
    const machines: Record<string, FleetMachine> = {};
    for (const m of ev.snapshot.machines) machines[m.machineId] = m;
    return {
      ...ctx,
      machines,
      capacity: ev.snapshot.capacity,
      clockOffsetMs: offset(ev.snapshot.at, ev.receivedAt, ctx.clockOffsetMs),
      synced: true,
    };
  },
  /** Added or changed. An update older than what we hold (by `updatedAt`) is ignored. */
  machine(ctx: FleetContext, ev: { machine: FleetMachine }): FleetContext {
    const m = ev.machine;
    const held = ctx.machines[m.machineId];
    if (held) {
      const heldAt = parseTime(held.updatedAt);
      const newAt = parseTime(m.updatedAt);
      if (heldAt !== undefined && newAt !== undefined && newAt < heldAt) return ctx;
    }
    return { ...ctx, machines: { ...ctx.machines, [m.machineId]: m } };
  },
  machineGone(ctx: FleetContext, ev: { gone: MachineGone; receivedAt?: number }): FleetContext {
    const clockOffsetMs = offset(ev.gone.at, ev.receivedAt, ctx.clockOffsetMs);
    if (!(ev.gone.machineId in ctx.machines)) return { ...ctx, clockOffsetMs };
    const machines = { ...ctx.machines };
    delete machines[ev.gone.machineId];
    return { ...ctx, machines, clockOffsetMs };
  },
  /** Every region's typical time: replaces what was there. */
  launchTimes(ctx: FleetContext, ev: { times: LaunchTimesView }): FleetContext {
    return { ...ctx, launchTimes: ev.times.regions };
  },
  capacity(ctx: FleetContext, ev: { capacity: CapacityView }): FleetContext {
    const c = ctx.capacity;
    if (c && c.live === ev.capacity.live && c.limit === ev.capacity.limit) return ctx;
    return { ...ctx, capacity: ev.capacity };
  },
};

export function createFleetStore(initial: FleetContext = EMPTY_FLEET) {
  return createStore({ context: initial, on: fleetTransitions });
}

export type FleetStore = ReturnType<typeof createFleetStore>;

/** Machines sorted by creation time, oldest first (id breaks ties: a stable order). */
export function selectMachineList(ctx: FleetContext): FleetMachine[] {
  return Object.values(ctx.machines).sort((a, b) =>
    a.createdAt === b.createdAt
      ? a.machineId < b.machineId
        ? -1
        : 1
      : a.createdAt < b.createdAt
        ? -1
        : 1,
  );
}

/** Regions with at least one machine, with counts, sorted by code. */
export function selectRegionCounts(ctx: FleetContext): RegionCount[] {
  return regionCounts(Object.values(ctx.machines).map((m) => m.region));
}

export function sameRegionCounts(a: readonly RegionCount[], b: readonly RegionCount[]): boolean {
  return (
    a.length === b.length && a.every((x, i) => x.code === b[i]?.code && x.count === b[i]?.count)
  );
}

export interface RegionSummary {
  readonly synced: boolean;
  readonly counts: RegionCount[];
}

/**
 * Region counts plus whether a snapshot has arrived: the first `fleet` message always notifies,
 * even when it is empty, so regions the server rendered as live are cleared if they emptied.
 */
export function selectRegionSummary(ctx: FleetContext): RegionSummary {
  return { synced: ctx.synced, counts: selectRegionCounts(ctx) };
}

export function sameRegionSummary(a: RegionSummary, b: RegionSummary): boolean {
  return a.synced === b.synced && sameRegionCounts(a.counts, b.counts);
}
