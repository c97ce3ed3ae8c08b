/**
 * The launch button's chart: idle → requesting → launching (requested → created → started) →
 * ready → redirecting, or failed; both ends return to idle after a delay. Pure: effects are named
 * actions the browser runtime provides, and client time arrives in events (`receivedAt`).
 */
import { assign, setup } from 'xstate';
import type { LaunchStatus, LaunchView } from '../wire.js';
import type { Timing } from './config.js';

export interface LaunchButtonInput {
  /** The landing page leaves for the machine when it is ready; the dashboard stays. */
  readonly redirect: boolean;
  /** The region to ask for (dashboard buttons); the landing page lets the server pick. */
  readonly region?: string | undefined;
  /** Words per failure reason (FAILURE_WORDS). */
  readonly failureWords: Readonly<Record<string, string>>;
  readonly timing: Timing;
}

export interface TimerState {
  /** Client clock (ms) at which the server's `requestedAt` happened. */
  readonly anchor: number;
  /** Final elapsed time (ms) once stopped: measured on the server clock when it can be. */
  readonly stoppedMs?: number | undefined;
}

export interface LaunchButtonContext {
  readonly redirect: boolean;
  readonly region: string | undefined;
  readonly words: Readonly<Record<string, string>>;
  readonly timing: Timing;
  readonly launchId?: string | undefined;
  readonly eventsUrl?: string | undefined;
  /** Stream version of the last launch message applied: older or repeated ones are ignored. */
  readonly version: number;
  readonly machineId?: string | undefined;
  readonly machineRegion?: string | undefined;
  readonly url?: string | undefined;
  readonly timer?: TimerState | undefined;
  readonly failure?: string | undefined;
}

export type LaunchButtonEvent =
  | { type: 'press' }
  | { type: 'accepted'; launchId: string; events: string; region: string }
  | { type: 'refused'; message: string }
  | { type: 'launch'; view: LaunchView; receivedAt: number }
  | { type: 'lost'; receivedAt: number };

export const LOST_WORDS = 'We lost track of this launch. Please try again.';
export const GENERIC_FAILURE_WORDS = 'Something went wrong launching the machine.';
const MACHINE_LOST_FALLBACK = 'The machine stopped before it was ready.';

function serverMs(view: LaunchView): number {
  const at = Date.parse(view.at);
  const requested = Date.parse(view.requestedAt);
  return Number.isFinite(at) && Number.isFinite(requested) ? Math.max(0, at - requested) : 0;
}

/**
 * The timer anchors on the first launch message: the server's own `at − requestedAt` says how far
 * along the launch already is, so a reconnect (or a late first message) does not reset it.
 */
function anchored(ctx: LaunchButtonContext, view: LaunchView, receivedAt: number): TimerState {
  return ctx.timer ?? { anchor: receivedAt - serverMs(view) };
}

function stopped(timer: TimerState | undefined, elapsedMs: number): TimerState | undefined {
  return timer && timer.stoppedMs === undefined ? { ...timer, stoppedMs: elapsedMs } : timer;
}

function failureWords(ctx: LaunchButtonContext, view: LaunchView): string {
  if (view.status === 'done') return ctx.words.machineLost ?? MACHINE_LOST_FALLBACK;
  return (view.reason && ctx.words[view.reason]) || view.message || GENERIC_FAILURE_WORDS;
}

export const launchButtonMachine = setup({
  types: {
    input: {} as LaunchButtonInput,
    context: {} as LaunchButtonContext,
    events: {} as LaunchButtonEvent,
  },
  actions: {
    // Effects, provided by the browser runtime (launchButton.ts); no-ops here keep the chart pure.
    postLaunch: (_, _params: { region: string | undefined }) => {},
    openStream: (_, _params: { url: string }) => {},
    closeStream: () => {},
    redirect: (_, _params: { url: string }) => {},
    clear: assign(() => ({
      launchId: undefined,
      eventsUrl: undefined,
      version: -1,
      machineId: undefined,
      machineRegion: undefined,
      url: undefined,
      timer: undefined,
      failure: undefined,
    })),
    accept: assign(({ event }) =>
      event.type === 'accepted'
        ? { launchId: event.launchId, eventsUrl: event.events, machineRegion: event.region }
        : {},
    ),
    refuse: assign(({ event }) =>
      event.type === 'refused' ? { failure: event.message || GENERIC_FAILURE_WORDS } : {},
    ),
    apply: assign(({ context, event }) => {
      if (event.type !== 'launch') return {};
      const v = event.view;
      return {
        version: v.version,
        machineId: v.machineId ?? context.machineId,
        // Where the machine is: another region when its own was full.
        machineRegion: v.placedIn || v.region || context.machineRegion,
        url: v.url ?? context.url,
        timer: anchored(context, v, event.receivedAt),
      };
    }),
    stopTimerAtServerTime: assign(({ context, event }) =>
      event.type === 'launch' ? { timer: stopped(context.timer, serverMs(event.view)) } : {},
    ),
    stopTimerNow: assign(({ context, event }) =>
      event.type === 'lost' && context.timer
        ? { timer: stopped(context.timer, event.receivedAt - context.timer.anchor) }
        : {},
    ),
    failFromView: assign(({ context, event }) =>
      event.type === 'launch' ? { failure: failureWords(context, event.view) } : {},
    ),
    failLost: assign({ failure: LOST_WORDS }),
  },
  guards: {
    /** A message for this launch that is newer than anything applied so far. */
    fresh: ({ context, event }) =>
      event.type === 'launch' &&
      event.view.launchId === context.launchId &&
      event.view.version > context.version,
    /** Fresh, and carrying this status. */
    freshWith: ({ context, event }, params: { status: LaunchStatus }) =>
      event.type === 'launch' &&
      event.view.launchId === context.launchId &&
      event.view.version > context.version &&
      event.view.status === params.status,
    canRedirect: ({ context }) =>
      context.redirect && typeof context.url === 'string' && context.url.length > 0,
  },
  delays: {
    failureReset: ({ context }) => context.timing.failureResetMs,
    successReset: ({ context }) => context.timing.successResetMs,
    redirectDelay: ({ context }) => context.timing.redirectDelayMs,
  },
}).createMachine({
  id: 'launchButton',
  context: ({ input }) => ({
    redirect: input.redirect,
    region: input.region,
    words: input.failureWords,
    timing: input.timing,
    version: -1,
  }),
  initial: 'idle',
  states: {
    idle: {
      entry: 'clear',
      on: { press: 'requesting' },
    },
    requesting: {
      entry: { type: 'postLaunch', params: ({ context }) => ({ region: context.region }) },
      on: {
        accepted: { target: 'launching', actions: 'accept' },
        refused: { target: 'failed', actions: 'refuse' },
      },
    },
    launching: {
      // The launch's SSE stream lives exactly as long as this state.
      entry: { type: 'openStream', params: ({ context }) => ({ url: context.eventsUrl ?? '' }) },
      exit: 'closeStream',
      initial: 'requested',
      on: {
        launch: [
          {
            guard: { type: 'freshWith', params: { status: 'ready' } },
            target: 'ready',
            actions: ['apply', 'stopTimerAtServerTime'],
          },
          {
            guard: { type: 'freshWith', params: { status: 'failed' } },
            target: 'failed',
            actions: ['apply', 'stopTimerAtServerTime', 'failFromView'],
          },
          {
            guard: { type: 'freshWith', params: { status: 'done' } },
            target: 'failed',
            actions: ['apply', 'stopTimerAtServerTime', 'failFromView'],
          },
          // Anything else fresh (a repeat of the current status, or one behind it) only updates
          // what we know; it never moves the button backwards.
          { guard: 'fresh', actions: 'apply' },
        ],
        lost: { target: 'failed', actions: ['stopTimerNow', 'failLost'] },
      },
      states: {
        requested: {
          on: {
            launch: [
              {
                guard: { type: 'freshWith', params: { status: 'created' } },
                target: 'created',
                actions: 'apply',
              },
              {
                guard: { type: 'freshWith', params: { status: 'started' } },
                target: 'started',
                actions: 'apply',
              },
            ],
          },
        },
        created: {
          on: {
            launch: [
              {
                guard: { type: 'freshWith', params: { status: 'started' } },
                target: 'started',
                actions: 'apply',
              },
            ],
          },
        },
        started: {},
      },
    },
    ready: {
      after: {
        redirectDelay: { guard: 'canRedirect', target: 'redirecting' },
        successReset: { target: 'idle' },
      },
    },
    redirecting: {
      entry: { type: 'redirect', params: ({ context }) => ({ url: context.url ?? '' }) },
      after: { successReset: { target: 'idle' } },
    },
    failed: {
      after: { failureReset: { target: 'idle' } },
    },
  },
});

export type LaunchButtonMachine = typeof launchButtonMachine;

/** The top-level state names, for views and tests. */
export type LaunchButtonState =
  'idle' | 'requesting' | 'requested' | 'created' | 'started' | 'ready' | 'redirecting' | 'failed';

/** Flattens the snapshot value: `{ launching: 'created' }` → `created`. */
export function buttonState(value: unknown): LaunchButtonState {
  if (typeof value === 'string') return value as LaunchButtonState;
  if (typeof value === 'object' && value !== null && 'launching' in value) {
    return (value as { launching: LaunchButtonState }).launching;
  }
  return 'idle';
}
