/**
 * The vm chart: one Useless Machine, whoever made it. Facts arrive from launch results, the VM's own
 * callbacks, API reconciliation and other regions, in any order; the chart only moves forward
 * (created → started → listening → stopping → destroyed). From creation until destruction a
 * deadline is always armed, so no machine outlives its actor.
 */
import { assign, setup } from 'xstate';
import { destroyOwnMachine, effectActions, type TimerTable } from '../effects.js';
import type { ChartEvent, FactType, LaunchSource } from '../facts.js';
import { phaseOf } from '../flyStates.js';

export const VM_CHART = 'vm.v1';

/** TTL for a machine whose TTL nobody told us (found by reconciliation). */
export const DEFAULT_TTL_MS = 10 * 60_000;
/** A VM stops itself at its TTL; we destroy it ourselves this much later if it has not. */
export const TTL_GRACE_MS = 30_000;
/** A stopping machine should be destroyed (auto_destroy) within this; then we force it. */
export const STOP_GRACE_MS = 60_000;
/** Destroy retries back off up to this interval, and never give up. */
export const MAX_DESTROY_INTERVAL_MS = 10 * 60_000;

export type VmSource = LaunchSource | 'foreign';
export type VmPhase = 'created' | 'started' | 'listening' | 'stopping' | 'destroyed';

export interface VmContext {
  machineId: string;
  region: string;
  launchId: string | undefined;
  source: VmSource;
  createdAt: number;
  updatedAt: number;
  ttlMs: number;
  /** Fly's last reported state, for operators. */
  flyState: string | undefined;
  destroyAttempts: number;
  timers: TimerTable;
}

export const VM_FACTS = [
  'fly.machineCreated',
  'fly.machineObserved',
  'fly.machineGone',
  'fly.machineDestroyed',
  'fly.destroyFailed',
  'vm.listening',
  'vm.stopping',
  'reconcile.orphanFound',
  'clock.ttlElapsed',
  'clock.stopElapsed',
] as const satisfies readonly FactType[];
export type VmEvent = ChartEvent<(typeof VM_FACTS)[number]>;

/** The phase a fact puts a machine in, if any. */
export function phaseOfFact(event: VmEvent): VmPhase | undefined {
  switch (event.type) {
    case 'fly.machineCreated':
      return phaseOf(event.state) === 'started' ? 'started' : 'created';
    case 'fly.machineObserved':
      return phaseOf(event.state);
    case 'vm.listening':
      return 'listening';
    case 'vm.stopping':
      return 'stopping';
    case 'fly.machineGone':
    case 'fly.machineDestroyed':
      return 'destroyed';
    case 'fly.destroyFailed':
      // Fly says the machine is not there: that is what we wanted.
      return event.status === 404 ? 'destroyed' : undefined;
    default:
      return undefined;
  }
}

const initialContext: VmContext = {
  machineId: '',
  region: '',
  launchId: undefined,
  source: 'foreign',
  createdAt: 0,
  updatedAt: 0,
  ttlMs: DEFAULT_TTL_MS,
  flyState: undefined,
  destroyAttempts: 0,
  timers: {},
};

const holderOf = (c: VmContext) => c.launchId ?? `vm:${c.machineId}`;
const ttlDeadline = (c: VmContext) => c.createdAt + c.ttlMs + TTL_GRACE_MS;
const holdUntil = (c: VmContext) => ttlDeadline(c) + STOP_GRACE_MS;
const backoff = (attempts: number) =>
  Math.min(STOP_GRACE_MS * 2 ** Math.max(0, attempts - 1), MAX_DESTROY_INTERVAL_MS);

/** Guard: a fact about this machine that moves it to `phase`. */
const movesTo =
  (phase: VmPhase) =>
  ({ context, event }: { context: VmContext; event: VmEvent }): boolean =>
    phaseOfFact(event) === phase &&
    context.machineId !== '' &&
    'machineId' in event &&
    event.machineId === context.machineId;

/** Guard: a first fact that names a machine (with its region) in `phase`. */
const adoptsAs =
  (phase: VmPhase) =>
  ({ context, event }: { context: VmContext; event: VmEvent }): boolean =>
    context.machineId === '' && phaseOfFact(event) === phase && 'region' in event;

/** The first live fact names the machine: take its identity, source, age and TTL from it. */
function adoption(context: VmContext, event: VmEvent): Partial<VmContext> {
  if (context.machineId !== '') return {};
  if (
    event.type !== 'fly.machineCreated' &&
    event.type !== 'fly.machineObserved' &&
    event.type !== 'vm.listening'
  ) {
    return {};
  }
  const launchId = event.launchId;
  const source: VmSource = ('source' in event && event.source) || (launchId ? 'button' : 'foreign');
  const createdAt = ('createdAt' in event && event.createdAt) || event.at;
  const ttlMs = event.ttlMs ?? DEFAULT_TTL_MS;
  return {
    machineId: event.machineId,
    region: event.region,
    launchId,
    source,
    createdAt,
    ttlMs,
  };
}

/** The slot a machine holds while it may exist: from adoption until Fly says it is destroyed. */
export function vmHold(s: {
  status: string;
  context: VmContext;
  matches: (state: 'unknown') => boolean;
}): { holder: string; until: number }[] {
  if (s.status !== 'active' || s.matches('unknown')) return [];
  return [{ holder: holderOf(s.context), until: holdUntil(s.context) }];
}

const liveEntry = ['adopt', 'observe'] as const;
// Forward moves a live machine makes on a fact about it (each state lists the ones ahead of it).
const toStarted = { guard: 'toStarted', target: 'started', actions: liveEntry } as const;
const toListening = { guard: 'toListening', target: 'listening', actions: liveEntry } as const;
const toStopping = { guard: 'toStopping', target: 'stopping', actions: liveEntry } as const;
const toDestroyed = { guard: 'toDestroyed', target: 'destroyed', actions: liveEntry } as const;

const firstEntry = [
  'adopt',
  'observe',
  'armTtl',
  {
    type: 'holdCapacity',
    params: ({ context }: { context: VmContext }) => ({
      holder: holderOf(context),
      until: holdUntil(context),
    }),
  },
] as const;
// A first fact naming the machine in a live phase: adopt it there.
const adoptCreated = { guard: 'adoptCreated', target: 'created', actions: firstEntry } as const;
const adoptStarted = { guard: 'adoptStarted', target: 'started', actions: firstEntry } as const;
const adoptListening = {
  guard: 'adoptListening',
  target: 'listening',
  actions: firstEntry,
} as const;
const adoptStopping = { guard: 'adoptStopping', target: 'stopping', actions: firstEntry } as const;

export const vmMachine = setup({
  types: { context: {} as VmContext, events: {} as VmEvent, tags: {} as VmPhase },
  actions: {
    ...effectActions,
    adopt: assign(({ context, event }) => adoption(context, event)),
    armTtl: assign({ timers: ({ context }) => ({ ...context.timers, ttl: ttlDeadline(context) }) }),
    observe: assign({
      updatedAt: ({ event }) => event.at,
      flyState: ({ context, event }) => ('state' in event ? event.state : context.flyState),
    }),
  },
  guards: {
    toCreated: movesTo('created'),
    toStarted: movesTo('started'),
    toListening: movesTo('listening'),
    toStopping: movesTo('stopping'),
    toDestroyed: movesTo('destroyed'),
    adoptCreated: adoptsAs('created'),
    adoptStarted: adoptsAs('started'),
    adoptListening: adoptsAs('listening'),
    adoptStopping: adoptsAs('stopping'),
    ttlDue: ({ context, event }) =>
      event.type === 'clock.ttlElapsed' && context.timers.ttl === event.due,
    stopDue: ({ context, event }) =>
      event.type === 'clock.stopElapsed' && context.timers.stop === event.due,
    orphanOfOurs: ({ context, event }) =>
      event.type === 'reconcile.orphanFound' && event.machineId === context.machineId,
  },
}).createMachine({
  id: VM_CHART,
  context: initialContext,
  initial: 'unknown',
  states: {
    // No fact yet. A first fact that names a live phase adopts the machine.
    unknown: {
      on: {
        'fly.machineCreated': [adoptStarted, adoptCreated],
        'fly.machineObserved': [adoptCreated, adoptStarted, adoptStopping],
        'vm.listening': adoptListening,
      },
    },
    created: {
      tags: ['created'],
      on: {
        'fly.machineObserved': [toStarted, toStopping, toDestroyed],
        'vm.listening': toListening,
      },
    },
    started: {
      tags: ['started'],
      on: { 'vm.listening': toListening, 'fly.machineObserved': [toStopping, toDestroyed] },
    },
    listening: {
      tags: ['listening'],
      on: { 'fly.machineObserved': [toStopping, toDestroyed] },
    },
    stopping: {
      tags: ['stopping'],
      entry: [
        assign({
          timers: ({ context, event }) => ({ ...context.timers, stop: event.at + STOP_GRACE_MS }),
        }),
        {
          type: 'awaitMachine',
          params: ({ context }) => ({
            machineId: context.machineId,
            launchId: context.launchId,
            state: 'destroyed',
          }),
        },
      ],
      on: {
        // Already stopping: a repeated "stopping" (a VM retrying its callback) or another orphan
        // report changes nothing. Masking the root handlers here keeps them from re-entering
        // this state, storing a fact and starting another watch each time.
        'vm.stopping': undefined,
        'reconcile.orphanFound': undefined,
        'fly.machineObserved': toDestroyed,
        // Still here after its grace: force it, and keep trying with backoff.
        'clock.stopElapsed': {
          guard: 'stopDue',
          actions: [
            assign({
              destroyAttempts: ({ context }) => context.destroyAttempts + 1,
              timers: ({ context, event }) => ({
                ...context.timers,
                stop: event.at + backoff(context.destroyAttempts + 1),
              }),
            }),
            destroyOwnMachine,
          ],
        },
      },
    },
    destroyed: {
      type: 'final',
      tags: ['destroyed'],
      entry: [
        assign({ updatedAt: ({ event }) => event.at, timers: {} }),
        { type: 'releaseCapacity', params: ({ context }) => ({ holder: holderOf(context) }) },
      ],
    },
  },
  // Facts every live phase takes the same way.
  on: {
    'vm.stopping': { guard: 'toStopping', target: '.stopping', actions: liveEntry },
    'fly.machineGone': { guard: 'toDestroyed', target: '.destroyed' },
    'fly.machineDestroyed': { guard: 'toDestroyed', target: '.destroyed' },
    'fly.destroyFailed': { guard: 'toDestroyed', target: '.destroyed' },
    // Past its TTL, or an orphan: destroy it now.
    'clock.ttlElapsed': {
      guard: 'ttlDue',
      target: '.stopping',
      actions: [
        // The TTL timer is spent; from here the stop timer keeps the deadline.
        assign(({ context, event }) => {
          const { ttl: _, ...rest } = context.timers;
          return { updatedAt: event.at, timers: rest };
        }),
        destroyOwnMachine,
      ],
    },
    'reconcile.orphanFound': {
      guard: 'orphanOfOurs',
      target: '.stopping',
      actions: [assign({ updatedAt: ({ event }) => event.at }), destroyOwnMachine],
    },
  },
});

export type VmMachine = typeof vmMachine;
