/**
 * The launch chart: one visitor's click, from request to a destroyed machine. Pure decider: it takes
 * facts (with their time) and names effects; the runtime stores, executes and feeds results back.
 *
 *   idle → requested → creating → waitingReady(created → started) → redirect → destroyed
 *                  ↘ failed      ↘ cleanup → failed                ↗ (ready before created)
 */
import { assign, setup } from 'xstate';
import {
  destroyOwnMachine,
  effectActions,
  type EffectParams,
  type TimerTable,
} from '../effects.js';
import type { ChartEvent, FactType, LaunchSource } from '../facts.js';
import { phaseOf } from '../flyStates.js';
import type { FailureReason, LaunchStatus } from '../vocabulary.js';

export const LAUNCH_CHART = 'launch.v1';

/** After giving up on a launch, how long between attempts to destroy whatever it may have made. */
export const CLEANUP_RETRY_MS = 30_000;
export const MAX_CLEANUP_ATTEMPTS = 4;
/** A cap slot outlives its launch's whole possible life by this much, then expires on its own. */
export const CAPACITY_GRACE_MS = 5 * 60_000;

export type { FailureReason };

/** Until when a launch's cap slot is held: its whole possible life, then the grace. */
export const slotUntil = (c: LaunchContext) =>
  c.requestedAt + c.readyTimeoutMs + c.ttlMs + CAPACITY_GRACE_MS;

export interface LaunchContext {
  launchId: string;
  region: string;
  source: LaunchSource;
  owner: string;
  readyTimeoutMs: number;
  ttlMs: number;
  requestedAt: number;
  /** Time of the last fact that changed the public status. */
  updatedAt: number;
  machineId: string | undefined;
  instanceId: string | undefined;
  reason: FailureReason | undefined;
  /** Fly's words when the failure came from the API. */
  detail: string | undefined;
  cleanupAttempts: number;
  timers: TimerTable;
  /** The W3C traceparent the request started; undefined for launches stored before traces. */
  traceparent: string | undefined;
  /** Regions Fly said were full for this launch, in the order tried (undefined: none). */
  fullRegions: readonly string[] | undefined;
  /** The region its machine was made in, when not its own (`region` was full). */
  placedIn: string | undefined;
}

export const LAUNCH_FACTS = [
  'launch.requested',
  'capacity.reserved',
  'capacity.exhausted',
  'launch.regionFull',
  'fly.machineCreated',
  'fly.createFailed',
  'fly.noMachineFound',
  'fly.machineObserved',
  'fly.machineGone',
  'fly.machineDestroyed',
  'fly.destroyFailed',
  'vm.listening',
  'vm.stopping',
  'clock.readyElapsed',
  'clock.cleanupElapsed',
] as const satisfies readonly FactType[];
export type LaunchEvent = ChartEvent<(typeof LAUNCH_FACTS)[number]>;

const initialContext: LaunchContext = {
  launchId: '',
  region: '',
  source: 'button',
  owner: '',
  readyTimeoutMs: 0,
  ttlMs: 0,
  requestedAt: 0,
  updatedAt: 0,
  machineId: undefined,
  instanceId: undefined,
  reason: undefined,
  detail: undefined,
  cleanupAttempts: 0,
  timers: {},
  traceparent: undefined,
  fullRegions: undefined,
  placedIn: undefined,
};

/** What a create needs, from the launch (the chart's transition and a re-drive both name it). */
export function createParams(c: LaunchContext): EffectParams['createMachine'] {
  const { launchId, region, source, ttlMs, traceparent, fullRegions } = c;
  return {
    launchId,
    region,
    source,
    ttlMs,
    ...(traceparent ? { traceparent } : {}),
    // A re-driven create skips the regions already found full.
    ...(fullRegions ? { exclude: fullRegions } : {}),
  };
}

/** A refused create, in the visitor's terms: a rate limit, no capacity (412), or Fly's error. */
const failureOf = (status: number): FailureReason =>
  status === 429 ? 'rateLimited' : status === 412 ? 'noCapacity' : 'flyError';

const without = (t: TimerTable, key: keyof TimerTable): TimerTable => {
  const { [key]: _, ...rest } = t;
  return rest;
};

// Action lists several transitions share (typed for the chart's context).
const releaseSlot = {
  type: 'releaseCapacity',
  params: ({ context }: { context: LaunchContext }) => ({ holder: context.launchId }),
} as const;
const closeCleanup = ['cancelCleanup', releaseSlot] as const;

export const launchMachine = setup({
  types: {
    context: {} as LaunchContext,
    events: {} as LaunchEvent,
    // The public statuses (launch.view.ts reads them).
    tags: {} as LaunchStatus,
  },
  actions: {
    ...effectActions,
    touch: assign({ updatedAt: ({ event }) => event.at }),
    cancelReady: assign({ timers: ({ context }) => without(context.timers, 'ready') }),
    cancelCleanup: assign({ timers: ({ context }) => without(context.timers, 'cleanup') }),
    /** Fly refused or did not answer a create: say why, in the visitor's terms. */
    recordCreateFailure: assign(({ event }) =>
      event.type === 'fly.createFailed'
        ? {
            reason: failureOf(event.status),
            detail: event.message,
          }
        : {},
    ),
  },
  guards: {
    readyDue: ({ context, event }) =>
      event.type === 'clock.readyElapsed' && context.timers.ready === event.due,
    cleanupDue: ({ context, event }) =>
      event.type === 'clock.cleanupElapsed' && context.timers.cleanup === event.due,
    /** Facts about a machine concern this launch only if it is this launch's machine. */
    ourMachine: ({ context, event }) =>
      'machineId' in event &&
      (context.machineId === undefined || context.machineId === event.machineId),
    ourMachineKnown: ({ context, event }) =>
      'machineId' in event && context.machineId === event.machineId,
    /**
     * In cleanup: the machine this launch made is gone — the one it knew of, or, when it never
     * heard which, one that carries its launch id (the sweep found and destroyed it).
     */
    sweptMachineGone: ({ context, event }) =>
      'machineId' in event &&
      (context.machineId === event.machineId ||
        (context.machineId === undefined &&
          'launchId' in event &&
          event.launchId === context.launchId)),
  },
}).createMachine({
  id: LAUNCH_CHART,
  context: initialContext,
  initial: 'idle',
  states: {
    idle: {
      on: {
        'launch.requested': {
          target: 'requested',
          actions: [
            assign(({ event }) => ({
              launchId: event.launchId,
              region: event.region,
              source: event.source,
              owner: event.owner,
              readyTimeoutMs: event.readyTimeoutMs,
              ttlMs: event.ttlMs,
              requestedAt: event.at,
              updatedAt: event.at,
              timers: { ready: event.at + event.readyTimeoutMs },
              traceparent: event.traceparent,
            })),
            {
              type: 'reserveCapacity',
              params: ({ context }) => ({ launchId: context.launchId, until: slotUntil(context) }),
            },
          ],
        },
      },
    },

    requested: {
      tags: ['requested'],
      on: {
        'capacity.reserved': {
          target: 'creating',
          actions: {
            type: 'createMachine',
            params: ({ context }) => createParams(context),
          },
        },
        'capacity.exhausted': {
          target: 'failed',
          actions: [
            'touch',
            assign({
              reason: 'capacity',
              detail: ({ event }) => `${event.live} of ${event.limit} machines are live`,
            }),
            'cancelReady',
          ],
        },
        'clock.readyElapsed': {
          guard: 'readyDue',
          target: 'failed',
          actions: ['touch', assign({ reason: 'readyTimeout' }), 'cancelReady', releaseSlot],
        },
      },
    },

    creating: {
      tags: ['requested'],
      on: {
        'launch.regionFull': {
          actions: assign({
            fullRegions: ({ context, event }) =>
              context.fullRegions?.includes(event.region)
                ? context.fullRegions
                : [...(context.fullRegions ?? []), event.region],
          }),
        },
        'fly.machineCreated': {
          target: 'waitingReady',
          actions: [
            'touch',
            assign({
              machineId: ({ event }) => event.machineId,
              instanceId: ({ event }) => event.instanceId,
              placedIn: ({ context, event }) =>
                event.region === context.region ? undefined : event.region,
            }),
            {
              type: 'awaitMachine',
              params: ({ context }) => ({
                machineId: context.machineId!,
                launchId: context.launchId,
                state: 'started',
              }),
            },
          ],
        },
        // Ready before the create response: the VM's callback names its machine; go.
        'vm.listening': {
          target: 'redirect',
          actions: ['touch', assign({ machineId: ({ event }) => event.machineId }), 'cancelReady'],
        },
        'fly.createFailed': [
          {
            // A definite refusal: nothing was made.
            guard: ({ event }) => !event.machineMayExist,
            target: 'failed',
            actions: ['touch', 'recordCreateFailure', 'cancelReady', releaseSlot],
          },
          {
            // Unknown outcome (timeout, 5xx, 429 after retries): a machine may exist. Sweep.
            target: 'cleanup',
            actions: ['touch', 'recordCreateFailure', 'cancelReady'],
          },
        ],
        'clock.readyElapsed': {
          guard: 'readyDue',
          target: 'cleanup',
          actions: ['touch', assign({ reason: 'readyTimeout' }), 'cancelReady'],
        },
      },
    },

    waitingReady: {
      initial: 'created',
      states: {
        created: {
          tags: ['created'],
          on: {
            'fly.machineObserved': {
              guard: ({ context, event }) =>
                context.machineId === event.machineId && phaseOf(event.state) === 'started',
              target: 'started',
              actions: 'touch',
            },
          },
        },
        started: { tags: ['started'] },
      },
      on: {
        'vm.listening': {
          guard: 'ourMachine',
          target: 'redirect',
          actions: ['touch', 'cancelReady'],
        },
        'clock.readyElapsed': {
          guard: 'readyDue',
          target: 'cleanup',
          actions: ['touch', assign({ reason: 'readyTimeout' }), 'cancelReady'],
        },
        // The machine died before it was ready.
        'fly.machineObserved': {
          guard: ({ context, event }) =>
            context.machineId === event.machineId &&
            (phaseOf(event.state) === 'stopping' || phaseOf(event.state) === 'destroyed'),
          target: 'cleanup',
          actions: ['touch', assign({ reason: 'machineLost' }), 'cancelReady'],
        },
        'vm.stopping': {
          guard: 'ourMachineKnown',
          target: 'cleanup',
          actions: ['touch', assign({ reason: 'machineLost' }), 'cancelReady'],
        },
        'fly.machineGone': {
          guard: 'ourMachineKnown',
          target: 'failed',
          actions: ['touch', assign({ reason: 'machineLost' }), 'cancelReady', releaseSlot],
        },
        'fly.machineDestroyed': {
          guard: 'ourMachineKnown',
          target: 'failed',
          actions: ['touch', assign({ reason: 'machineLost' }), 'cancelReady', releaseSlot],
        },
      },
    },

    // The visitor is sent to the machine; the launch follows it until it is destroyed.
    redirect: {
      tags: ['ready'],
      on: {
        // The create response after an early ready: record it, nothing else changes.
        'fly.machineCreated': {
          guard: ({ context, event }) =>
            context.instanceId === undefined && context.machineId === event.machineId,
          actions: assign({ instanceId: ({ event }) => event.instanceId }),
        },
        'fly.machineGone': {
          guard: 'ourMachineKnown',
          target: 'destroyed',
          actions: ['touch', releaseSlot],
        },
        'fly.machineDestroyed': {
          guard: 'ourMachineKnown',
          target: 'destroyed',
          actions: ['touch', releaseSlot],
        },
        'fly.machineObserved': {
          guard: ({ context, event }) =>
            context.machineId === event.machineId && phaseOf(event.state) === 'destroyed',
          target: 'destroyed',
          actions: ['touch', releaseSlot],
        },
      },
    },

    // Failed (the visitor is told), but a machine may exist: destroy it before letting go.
    cleanup: {
      tags: ['failed'],
      entry: [
        assign({
          cleanupAttempts: 1,
          timers: ({ context, event }) => ({
            ...context.timers,
            cleanup: event.at + CLEANUP_RETRY_MS,
          }),
        }),
        destroyOwnMachine,
      ],
      on: {
        // The sweep found the machine this launch never heard of: follow it by id from now on
        // (its destroy may fail; the launch then keeps its slot and hands it to the machine's actor).
        'fly.machineObserved': [
          {
            guard: ({ context, event }) =>
              context.machineId === undefined &&
              event.launchId === context.launchId &&
              phaseOf(event.state) !== 'destroyed',
            actions: assign({ machineId: ({ event }) => event.machineId }),
          },
          {
            guard: ({ context, event }) =>
              context.machineId === event.machineId && phaseOf(event.state) === 'destroyed',
            target: 'failed',
            actions: [...closeCleanup],
          },
        ],
        // The create we gave up on finished after all: destroy what it made.
        'fly.machineCreated': {
          guard: ({ context }) => context.machineId === undefined,
          actions: [
            assign({
              machineId: ({ event }) => event.machineId,
              instanceId: ({ event }) => event.instanceId,
            }),
            destroyOwnMachine,
          ],
        },
        'vm.listening': {
          guard: ({ context }) => context.machineId === undefined,
          actions: [assign({ machineId: ({ event }) => event.machineId }), destroyOwnMachine],
        },
        'fly.createFailed': [
          {
            // A late, definite refusal (or a create withdrawn unsent): nothing exists to clean up.
            guard: ({ context, event }) =>
              context.machineId === undefined && !event.machineMayExist,
            target: 'failed',
            actions: [...closeCleanup],
          },
          {
            // The create we gave up on ended without knowing: sweep again now, not at the retry.
            guard: ({ context }) => context.machineId === undefined,
            actions: {
              type: 'destroyMachine',
              params: ({ context }) => ({ launchId: context.launchId }),
            },
          },
        ],
        'fly.machineDestroyed': {
          guard: 'sweptMachineGone',
          target: 'failed',
          actions: [...closeCleanup],
        },
        'fly.machineGone': {
          guard: 'sweptMachineGone',
          target: 'failed',
          actions: [...closeCleanup],
        },
        // The sweep found nothing alive and no create of ours is still running: nothing to wait for.
        'fly.noMachineFound': {
          guard: ({ context, event }) => context.machineId === undefined && event.settled,
          target: 'failed',
          actions: [...closeCleanup],
        },
        'clock.cleanupElapsed': [
          {
            guard: ({ context, event }) =>
              context.timers.cleanup === event.due &&
              context.cleanupAttempts < MAX_CLEANUP_ATTEMPTS,
            actions: [
              assign({
                cleanupAttempts: ({ context }) => context.cleanupAttempts + 1,
                timers: ({ context, event }) => ({
                  ...context.timers,
                  cleanup: event.at + CLEANUP_RETRY_MS,
                }),
              }),
              destroyOwnMachine,
            ],
          },
          {
            // Out of attempts, machine known: its own actor (TTL, forced destroys) takes over, and
            // keeps the slot (same holder) until the machine is really gone.
            guard: ({ context, event }) =>
              context.timers.cleanup === event.due && context.machineId !== undefined,
            target: 'failed',
            actions: ['cancelCleanup'],
          },
          {
            // Out of attempts and no machine ever seen: the sweeps found nothing; the reconciler
            // remains the last line for one that appears later.
            guard: 'cleanupDue',
            target: 'failed',
            actions: ['cancelCleanup', releaseSlot],
          },
        ],
      },
    },

    failed: { type: 'final', tags: ['failed'] },
    destroyed: { type: 'final', tags: ['done'] },
  },
});

export type LaunchMachine = typeof launchMachine;
