/**
 * What the launch button looks like and says in each state: a pure function of the chart's
 * snapshot, for the landing page (one big button) and the dashboard (a button per region). The
 * server renders the idle button from it, so the page and the script never disagree on the words.
 */
import {
  buttonState,
  type LaunchButtonContext,
  type LaunchButtonState,
} from './launchButton.machine.js';
import { formatElapsed } from './format.js';

export type ButtonMode = 'page' | 'tile';

export interface LaunchButtonView {
  readonly state: LaunchButtonState;
  /** Only an idle button can be pressed. */
  readonly disabled: boolean;
  /** Short text on the button itself. */
  readonly label: string;
  /** The sentence for the status line, announced politely on change. */
  readonly message: string;
  /** The timer ticks while true; otherwise it shows its last value (or nothing). */
  readonly timerRunning: boolean;
  /** The machine's region while this launch is alive: it pulses on the map. */
  readonly ownRegion: string | undefined;
  /** The machine's URL once ready: a link for when the redirect does not happen. */
  readonly link: string | undefined;
}

/** What the words depend on: the chart's snapshot, or just `redirect` before the chart exists. */
interface SnapshotLike {
  readonly value: unknown;
  readonly context: Pick<LaunchButtonContext, 'redirect'> &
    Partial<Pick<LaunchButtonContext, 'machineId' | 'machineRegion' | 'url' | 'timer' | 'failure'>>;
}

/** Elapsed launch time at client time `now`, or undefined before the first launch message. */
export function elapsedMs(ctx: LaunchButtonContext, now: number): number | undefined {
  const t = ctx.timer;
  if (!t) return undefined;
  return t.stoppedMs ?? Math.max(0, now - t.anchor);
}

const ALIVE: ReadonlySet<LaunchButtonState> = new Set([
  'requested',
  'created',
  'started',
  'ready',
  'redirecting',
]);

/** The button before anyone presses it, as the server renders it. */
export function idleLaunchButton(mode: ButtonMode): LaunchButtonView {
  return viewLaunchButton({ value: 'idle', context: { redirect: mode === 'page' } }, mode);
}

export function viewLaunchButton(
  snapshot: SnapshotLike,
  mode: ButtonMode,
  cityOf: (code: string) => string = (c) => c,
): LaunchButtonView {
  const state = buttonState(snapshot.value);
  const ctx = snapshot.context;
  const where = ctx.machineRegion ? cityOf(ctx.machineRegion) : undefined;
  const id = ctx.machineId ? `Machine ${ctx.machineId}` : 'Your machine';
  const final = ctx.timer?.stoppedMs;
  let label: string;
  let message: string;
  switch (state) {
    case 'idle':
      label = 'Launch';
      message = mode === 'page' ? 'Press the button to start a machine.' : '';
      break;
    case 'requesting':
      label = mode === 'page' ? 'Asking' : 'Launching…';
      message = 'Asking the cloud for a machine…';
      break;
    case 'requested':
      label = mode === 'page' ? 'Queued' : 'Launching…';
      message = where
        ? `Request accepted. Making room in ${where}…`
        : 'Request accepted. Making room…';
      break;
    case 'created':
      label = mode === 'page' ? 'Created' : 'Launching…';
      message = `${id} created${where ? ` in ${where}` : ''}. Booting it up…`;
      break;
    case 'started':
      label = mode === 'page' ? 'Booting' : 'Launching…';
      message = `${id} is running. Waiting for it to say hello…`;
      break;
    case 'ready':
      label =
        mode === 'page'
          ? 'Ready!'
          : final !== undefined
            ? `Launched in ${formatElapsed(final)}`
            : 'Launched';
      message =
        mode === 'page' && ctx.redirect && ctx.url
          ? `${id} is ready! Taking you there…`
          : `${id} is ready${final !== undefined ? ` after ${formatElapsed(final)}` : ''}.`;
      break;
    case 'redirecting':
      label = 'Going';
      message = `Opening ${id.toLowerCase() === 'your machine' ? 'your machine' : id}…`;
      break;
    case 'failed':
      label = 'Failed';
      message = `${mode === 'page' ? 'Launch failed' : 'Failed'}: ${ctx.failure ?? 'unknown reason'}`;
      break;
  }
  return {
    state,
    disabled: state !== 'idle',
    label,
    message,
    timerRunning: ctx.timer !== undefined && ctx.timer.stoppedMs === undefined,
    ownRegion: ALIVE.has(state) ? ctx.machineRegion : undefined,
    link: state === 'ready' || state === 'redirecting' ? ctx.url : undefined,
  };
}
