/**
 * The warm pool of one region: keep `target` machines created and stopped (Fly's skip_launch) so a
 * launch can start one in well under a second instead of creating one (ADR 0022). One create at a
 * time (Fly allows about one per second per app); a claim is accepted only for a ready machine, so
 * two instances racing for the same one are told apart by the stream's compare-and-set. Pure.
 *
 *   unconfigured → steady ⇄ creating → backoff → steady
 *   (steady: nothing in flight; creating: one create out; backoff: waiting after a failed create)
 */
import { assign, setup } from 'xstate';
import { effectActions, type EffectParams, type TimerTable } from '../effects.js';
import type { ChartEvent, FactType, PoolRetireReason } from '../facts.js';
import { POOL_NAME_PREFIX } from '../vocabulary.js';

export const POOL_CHART = 'pool.v1';
/** A create that has not answered after this long is presumed lost: the next one goes out. */
export const POOL_CREATE_DEADLINE_MS = 120_000;
/** After failed creates: wait 2 s, 4 s, 8 s… up to a minute before the next. */
export const POOL_BACKOFF_MS = 2_000;
export const POOL_BACKOFF_MAX_MS = 60_000;
/** A claimed machine is remembered this long (its VM fetches its claim within seconds of start). */
export const POOL_CLAIM_KEEP_MS = 10 * 60_000;

export type PoolMachineState = 'ready' | 'claimed' | 'retiring';

export interface PoolMachine {
  state: PoolMachineState;
  name: string;
  image: string;
  instanceId: string;
  /** The launch that claimed it. */
  launchId?: string;
  /** Why it is retiring. */
  reason?: PoolRetireReason;
  /** When it entered its state (epoch ms, from the fact). */
  at: number;
}

export interface PoolContext {
  region: string;
  target: number;
  image: string;
  machines: Record<string, PoolMachine>;
  /** The name of the create in flight, if any. */
  creating: string | undefined;
  /** Creates that failed in a row (the backoff grows with them). */
  failures: number;
  claims: number;
  updatedAt: number;
  timers: TimerTable;
}

export const POOL_FACTS = [
  'pool.configured',
  'pool.machineAdded',
  'pool.createFailed',
  'pool.createLost',
  'pool.machineClaimed',
  'pool.machineRetired',
  'pool.machineFoundRunning',
  'clock.refillElapsed',
] as const satisfies readonly FactType[];
export type PoolEvent = ChartEvent<(typeof POOL_FACTS)[number]>;

const initialContext: PoolContext = {
  region: '',
  target: 0,
  image: '',
  machines: {},
  creating: undefined,
  failures: 0,
  claims: 0,
  updatedAt: 0,
  timers: {},
};

/** The ids of ready machines of the pool's current image, oldest first. */
export function readyMachines(c: Pick<PoolContext, 'machines' | 'image'>): string[] {
  return Object.entries(c.machines)
    .filter(([, m]) => m.state === 'ready' && m.image === c.image)
    .sort(([a, ma], [b, mb]) => ma.at - mb.at || (a < b ? -1 : 1))
    .map(([id]) => id);
}

/** The name of the machine a fact's create makes: chosen here, so a re-driven create finds it. */
export const pooledName = (region: string, eventId: string) =>
  `${POOL_NAME_PREFIX}${region}-${eventId.toLowerCase()}`;

export const backoffMs = (failures: number) =>
  Math.min(POOL_BACKOFF_MAX_MS, POOL_BACKOFF_MS * 2 ** Math.max(0, failures - 1));

/**
 * Ready machines that must go: of another image than the pool's, or beyond the target (the newest
 * go first, the oldest stay: they have been stopped longest and start no slower).
 */
function toRetire(c: PoolContext): EffectParams['retirePooled']['machines'] {
  const out: EffectParams['retirePooled']['machines'] = [];
  for (const [machineId, m] of Object.entries(c.machines))
    if (m.state === 'ready' && m.image !== c.image) out.push({ machineId, reason: 'oldImage' });
  const ready = readyMachines(c);
  for (const machineId of ready.slice(c.target)) out.push({ machineId, reason: 'overTarget' });
  return out;
}

/** Claimed machines are forgotten once their VM had ample time to fetch its claim. */
function pruned(machines: Record<string, PoolMachine>, at: number): Record<string, PoolMachine> {
  const out: Record<string, PoolMachine> = {};
  for (const [id, m] of Object.entries(machines))
    if (m.state !== 'claimed' || at - m.at < POOL_CLAIM_KEEP_MS) out[id] = m;
  return out;
}

/** Retire what `toRetire` names (evaluated before `markRetiring`, which reads the same). */
const retireIntent = {
  type: 'retirePooled',
  params: ({ context }: { context: PoolContext }) => ({
    region: context.region,
    machines: toRetire(context),
  }),
} as const;

export const poolMachine = setup({
  types: {
    context: {} as PoolContext,
    events: {} as PoolEvent,
    tags: {} as 'unconfigured' | 'steady' | 'creating' | 'backoff',
  },
  actions: {
    ...effectActions,
    touch: assign({ updatedAt: ({ event }) => event.at }),
    configure: assign(({ event }) =>
      event.type === 'pool.configured'
        ? { region: event.region, target: event.target, image: event.image }
        : {},
    ),
    markRetiring: assign({
      machines: ({ context, event }) => {
        const machines = { ...context.machines };
        for (const { machineId, reason } of toRetire(context))
          machines[machineId] = {
            ...machines[machineId]!,
            state: 'retiring',
            reason,
            at: event.at,
          };
        return machines;
      },
    }),
    startCreate: assign(({ context, event }) => ({
      creating: pooledName(context.region, event.eventId),
      timers: { ...context.timers, refill: event.at + POOL_CREATE_DEADLINE_MS },
    })),
    added: assign(({ context, event }) => {
      if (event.type !== 'pool.machineAdded') return {};
      const mine = context.creating === event.name;
      return {
        machines: {
          ...pruned(context.machines, event.at),
          [event.machineId]: {
            state: 'ready' as const,
            name: event.name,
            image: event.image,
            instanceId: event.instanceId,
            at: event.at,
          },
        },
        ...(mine ? { creating: undefined, failures: 0, timers: {} } : {}),
      };
    }),
    createFailed: assign(({ context, event }) => {
      const failures = context.failures + 1;
      return {
        creating: undefined,
        failures,
        timers: { refill: event.at + backoffMs(failures) },
      };
    }),
    createLost: assign({ creating: undefined, timers: {} }),
    claimed: assign(({ context, event }) => {
      if (event.type !== 'pool.machineClaimed') return {};
      const m = context.machines[event.machineId]!;
      return {
        claims: context.claims + 1,
        machines: {
          ...pruned(context.machines, event.at),
          [event.machineId]: {
            ...m,
            state: 'claimed' as const,
            launchId: event.launchId,
            at: event.at,
          },
        },
      };
    }),
    retired: assign({
      machines: ({ context, event }) => {
        const { [event.type === 'pool.machineRetired' ? event.machineId : '']: _gone, ...rest } =
          context.machines;
        return rest;
      },
    }),
  },
  guards: {
    needsMachine: ({ context }) =>
      context.image !== '' && readyMachines(context).length < context.target,
    overTarget: ({ context }) => toRetire(context).length > 0,
    ownCreate: ({ context, event }) =>
      (event.type === 'pool.machineAdded' ||
        event.type === 'pool.createFailed' ||
        event.type === 'pool.createLost') &&
      event.name === context.creating,
    unknownMachine: ({ context, event }) =>
      event.type === 'pool.machineAdded' && !Object.hasOwn(context.machines, event.machineId),
    isReady: ({ context, event }) =>
      (event.type === 'pool.machineClaimed' || event.type === 'pool.machineFoundRunning') &&
      context.machines[event.machineId]?.state === 'ready',
    // A claimed machine leaves too when its start failed (`claimFailed`): its launch creates one.
    knownMachine: ({ context, event }) =>
      event.type === 'pool.machineRetired' && Object.hasOwn(context.machines, event.machineId),
    refillDue: ({ context, event }) =>
      event.type === 'clock.refillElapsed' && context.timers.refill === event.due,
  },
}).createMachine({
  id: POOL_CHART,
  context: initialContext,
  initial: 'unconfigured',
  // What any configured pool takes, whatever it is doing. Ready machines of an old image or over
  // the target are retired as soon as they appear (eventless, in `steady`, `creating`, `backoff`).
  on: {
    'pool.configured': { actions: ['configure', 'touch'] },
    'pool.machineAdded': { guard: 'unknownMachine', actions: ['added', 'touch'] },
    'pool.machineClaimed': { guard: 'isReady', actions: ['claimed', 'touch'] },
    'pool.machineRetired': { guard: 'knownMachine', actions: ['retired', 'touch'] },
    'pool.machineFoundRunning': {
      guard: 'isReady',
      actions: [
        {
          type: 'stopPooled',
          params: ({ context, event }) => ({
            region: context.region,
            machineId: event.type === 'pool.machineFoundRunning' ? event.machineId : '',
          }),
        },
        'touch',
      ],
    },
  },
  states: {
    unconfigured: {
      tags: ['unconfigured'],
      on: {
        'pool.configured': { target: 'steady', actions: ['configure', 'touch'] },
        // Nothing to claim, retire or stop before the pool knows its region and image.
        'pool.machineAdded': undefined,
        'pool.machineClaimed': undefined,
        'pool.machineRetired': undefined,
        'pool.machineFoundRunning': undefined,
      },
    },
    steady: {
      tags: ['steady'],
      always: [
        { guard: 'overTarget', actions: [retireIntent, 'markRetiring'] },
        { guard: 'needsMachine', target: 'creating' },
      ],
    },
    creating: {
      tags: ['creating'],
      entry: [
        'startCreate',
        {
          type: 'createPooled',
          params: ({ context }) => ({
            region: context.region,
            image: context.image,
            name: context.creating!,
          }),
        },
      ],
      always: { guard: 'overTarget', actions: [retireIntent, 'markRetiring'] },
      on: {
        // Another machine (adopted by the reconciler) is taken by the pool-wide handler.
        'pool.machineAdded': { guard: 'ownCreate', target: 'steady', actions: ['added', 'touch'] },
        'pool.createFailed': {
          guard: 'ownCreate',
          target: 'backoff',
          actions: ['createFailed', 'touch'],
        },
        // Its instance died with it in flight: the next one goes out now. Whatever it made
        // carries the pool's metadata, and the reconciler adopts or retires it.
        'pool.createLost': {
          guard: 'ownCreate',
          target: 'steady',
          actions: ['createLost', 'touch'],
        },
        // The create never answered (its instance died unseen): presume it lost. Whatever it made
        // carries the pool's metadata, and the reconciler adopts or retires it.
        'clock.refillElapsed': {
          guard: 'refillDue',
          target: 'steady',
          actions: ['createLost', 'touch'],
        },
      },
    },
    backoff: {
      tags: ['backoff'],
      always: { guard: 'overTarget', actions: [retireIntent, 'markRetiring'] },
      on: {
        'clock.refillElapsed': {
          guard: 'refillDue',
          target: 'steady',
          actions: [assign({ timers: {} }), 'touch'],
        },
      },
    },
  },
});

export type PoolMachineLogic = typeof poolMachine;
