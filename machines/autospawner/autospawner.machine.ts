/**
 * The autospawner chart: while visitors watch the map, launch a short-lived machine every interval
 * (±20 % jitter) in a rotating list of regions. One spawn timer key means one spawn loop, however
 * often visitors come and go. Pure: randomness arrives as `roll` in facts.
 *
 *   off ⇄ idle ⇄ active   (off: switched off; idle: nobody watching; active: spawning)
 */
import { assign, setup } from 'xstate';
import { effectActions, type TimerTable } from '../effects.js';
import type { ChartEvent, FactType } from '../facts.js';

export const AUTOSPAWNER_CHART = 'autospawner.v1';
export { AUTOSPAWNER_STREAM } from '../vocabulary.js';
export const JITTER = 0.2;

export interface AutospawnerContext {
  enabled: boolean;
  intervalMs: number;
  inactivityMs: number;
  regions: string[];
  nextIndex: number;
  visitors: number;
  lastSpawnAt: number | undefined;
  lastSpawnRegion: string | undefined;
  spawns: number;
  timers: TimerTable;
}

export const AUTOSPAWNER_FACTS = [
  'autospawner.configured',
  'autospawner.switched',
  'presence.changed',
  'clock.spawnElapsed',
  'clock.inactivityElapsed',
] as const satisfies readonly FactType[];
export type AutospawnerEvent = ChartEvent<(typeof AUTOSPAWNER_FACTS)[number]>;

/** `interval × (1 ± 20 %)`, from a roll in [0, 1). */
export const jittered = (intervalMs: number, roll: number): number =>
  Math.round(intervalMs * (1 - JITTER + 2 * JITTER * roll));

const initialContext: AutospawnerContext = {
  enabled: true,
  intervalMs: 2 * 60 * 60_000,
  inactivityMs: 10 * 60_000,
  regions: ['ams', 'ord', 'syd', 'nrt', 'dfw'],
  nextIndex: 0,
  visitors: 0,
  lastSpawnAt: undefined,
  lastSpawnRegion: undefined,
  spawns: 0,
  timers: {},
};

export const autospawnerMachine = setup({
  types: {
    context: {} as AutospawnerContext,
    events: {} as AutospawnerEvent,
    tags: {} as 'off' | 'idle' | 'active',
  },
  actions: {
    ...effectActions,
    clearTimers: assign({ timers: {} }),
    configure: assign(({ event }) =>
      event.type === 'autospawner.configured'
        ? {
            enabled: event.enabled,
            intervalMs: event.intervalMs,
            inactivityMs: event.inactivityMs,
            regions: event.regions,
          }
        : {},
    ),
    countVisitors: assign({
      visitors: ({ context, event }) =>
        event.type === 'presence.changed' ? event.visitors : context.visitors,
    }),
    /**
     * Arm the first spawn when visitors arrive: at once if the last spawn is an interval old,
     * otherwise when that interval (jittered) is up. Never a second loop: the key is the same.
     */
    armFirstSpawn: assign({
      timers: ({ context, event }) => {
        const roll = 'roll' in event ? event.roll : 0.5;
        const due =
          context.lastSpawnAt === undefined
            ? event.at
            : Math.max(event.at, context.lastSpawnAt + jittered(context.intervalMs, roll));
        return { ...context.timers, spawn: due };
      },
    }),
    armInactivity: assign({
      timers: ({ context, event }) => ({
        ...context.timers,
        inactivity: event.at + context.inactivityMs,
      }),
    }),
    spawned: assign(({ context, event }) => {
      const roll = 'roll' in event ? event.roll : 0.5;
      return {
        nextIndex: (context.nextIndex + 1) % context.regions.length,
        lastSpawnAt: event.at,
        lastSpawnRegion: context.regions[context.nextIndex % context.regions.length],
        spawns: context.spawns + 1,
        timers: { ...context.timers, spawn: event.at + jittered(context.intervalMs, roll) },
      };
    }),
  },
  guards: {
    visitorsPresent: ({ event }) => event.type === 'presence.changed' && event.visitors > 0,
    nobodyWatching: ({ event }) => event.type === 'presence.changed' && event.visitors === 0,
    spawnDue: ({ context, event }) =>
      event.type === 'clock.spawnElapsed' && context.timers.spawn === event.due,
    inactivityDue: ({ context, event }) =>
      event.type === 'clock.inactivityElapsed' && context.timers.inactivity === event.due,
    switchedOff: ({ event }) =>
      (event.type === 'autospawner.switched' && !event.on) ||
      (event.type === 'autospawner.configured' && !event.enabled),
    switchedOn: ({ event }) =>
      (event.type === 'autospawner.switched' && event.on) ||
      (event.type === 'autospawner.configured' && event.enabled),
  },
}).createMachine({
  id: AUTOSPAWNER_CHART,
  context: initialContext,
  initial: 'idle',
  states: {
    off: {
      tags: ['off'],
      on: {
        'autospawner.switched': {
          guard: 'switchedOn',
          target: 'idle',
          actions: assign({ enabled: true }),
        },
        'autospawner.configured': [
          { guard: 'switchedOn', target: 'idle', actions: 'configure' },
          { actions: 'configure' },
        ],
        // Counted even while off, so switching on with people watching starts at once.
        'presence.changed': { actions: 'countVisitors' },
      },
    },
    idle: {
      tags: ['idle'],
      // Visitors were already here when we got switched on (or configured).
      always: { guard: ({ context }) => context.visitors > 0, target: 'active' },
      on: {
        'presence.changed': [
          { guard: 'visitorsPresent', target: 'active', actions: 'countVisitors' },
          { actions: 'countVisitors' },
        ],
        'autospawner.switched': {
          guard: 'switchedOff',
          target: 'off',
          actions: assign({ enabled: false }),
        },
        'autospawner.configured': [
          { guard: 'switchedOff', target: 'off', actions: 'configure' },
          { actions: 'configure' },
        ],
      },
    },
    active: {
      tags: ['active'],
      entry: ['armFirstSpawn', 'armInactivity'],
      on: {
        'presence.changed': [
          { guard: 'nobodyWatching', target: 'idle', actions: ['countVisitors', 'clearTimers'] },
          {
            // Still watched: only the inactivity safety moves; the spawn loop is untouched.
            actions: ['countVisitors', 'armInactivity'],
          },
        ],
        'clock.spawnElapsed': {
          guard: 'spawnDue',
          actions: [
            {
              type: 'spawnLaunch',
              params: ({ context, event }) => ({
                launchId: event.eventId,
                region: context.regions[context.nextIndex % context.regions.length]!,
              }),
            },
            'spawned',
          ],
        },
        // Nobody has confirmed visitors for a long while (their source may have died): stop.
        'clock.inactivityElapsed': {
          guard: 'inactivityDue',
          target: 'idle',
          actions: [assign({ visitors: 0 }), 'clearTimers'],
        },
        'autospawner.switched': {
          guard: 'switchedOff',
          target: 'off',
          actions: [assign({ enabled: false }), 'clearTimers'],
        },
        'autospawner.configured': [
          { guard: 'switchedOff', target: 'off', actions: ['configure', 'clearTimers'] },
          { actions: 'configure' },
        ],
      },
    },
  },
});

export type AutospawnerMachine = typeof autospawnerMachine;
