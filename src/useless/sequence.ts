/**
 * The pacing of the animation and the words on the page: shared by the server (which renders the
 * first state) and the browser script (which plays the rest), so both always agree.
 */
import { FRAMES } from './frames.js';

export type Lights = 'on' | 'off';

export interface Step {
  /** Index into FRAMES. */
  readonly frame: number;
  /** Milliseconds to wait after the previous step before showing this one. */
  readonly after: number;
  readonly lights: Lights;
}

/** Dwell on the closed box, then a quick run, a pause before the press, the press, and back. */
export const FIRST_DWELL_MS = 2500;
export const FRAME_MS = 140;
export const HANG_FIRE_MS = 650;
export const PRESS_MS = 200;
/** The frame in which the switch flips; the lights go off on the very next step. */
export const PRESS_FRAME = 6;

function buildSequence(): Step[] {
  const steps: Step[] = [{ frame: 0, after: 0, lights: 'on' }];
  for (let frame = 1; frame < FRAMES.length; frame++) {
    const after =
      frame === 1
        ? FIRST_DWELL_MS
        : frame === PRESS_FRAME
          ? HANG_FIRE_MS
          : frame === PRESS_FRAME + 1
            ? PRESS_MS
            : FRAME_MS;
    steps.push({ frame, after, lights: frame <= PRESS_FRAME ? 'on' : 'off' });
  }
  return steps;
}

export const SEQUENCE: readonly Step[] = buildSequence();

/** Total running time of the sequence, first frame to last. */
export const SEQUENCE_MS = SEQUENCE.reduce((sum, s) => sum + s.after, 0);

/** What the page says in each state. `{id}` and `{city}` are filled in by `pageTexts`. */
export interface PageTexts {
  readonly onHeading: string;
  readonly onLine: string;
  readonly offHeading: string;
  readonly offLine: string;
  readonly goneHeading: string;
  readonly goneLine: string;
  readonly homeLink: string;
}

export function pageTexts(machineId: string, city: string): PageTexts {
  return {
    onHeading: 'You started a Useless Machine',
    onLine: `This is Fly Machine ${machineId} in ${city}.`,
    offHeading: 'Switched off. Self-destructing…',
    offLine: `Machine ${machineId} has done its one job and is shutting itself down.`,
    goneHeading: 'This machine is gone',
    goneLine: `Machine ${machineId} in ${city} switched itself off and no longer exists.`,
    homeLink: 'Back to the map',
  };
}
