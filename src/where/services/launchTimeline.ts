/**
 * A launch's timeline, pure: each public status it reached, the fact that moved it there and that
 * fact's time, folded from the launch's snapshots one fact at a time (live or replayed).
 */
import type { AnyMachineSnapshot, SnapshotFrom } from 'xstate';
import { launchStatusOf, type LaunchMachine } from '../../../machines/index.js';
import type { LaunchStatus } from '../../../machines/vocabulary.js';
import type { LaunchTimelineStep } from '../wire.js';

/** A step with the stream version of its fact (a view at version v shows the steps up to v). */
export interface TimelineEntry extends LaunchTimelineStep {
  readonly version: number;
}

/** A stored fact as far as a timeline cares. */
export interface TimelineFact {
  readonly type: string;
  readonly at: string;
  readonly version: number;
}

export const statusOf = (snapshot: AnyMachineSnapshot): LaunchStatus | undefined =>
  launchStatusOf(snapshot as SnapshotFrom<LaunchMachine>);

/** The timeline after one more fact: a new step when the status changed, else the same list. */
export function foldStep(
  steps: readonly TimelineEntry[],
  fact: TimelineFact,
  snapshot: AnyMachineSnapshot,
): readonly TimelineEntry[] {
  const status = statusOf(snapshot);
  if (!status || steps.at(-1)?.step === status) return steps;
  return [...steps, { step: status, fact: fact.type, at: fact.at, version: fact.version }];
}

/** The whole timeline of a replayed stream. */
export function timelineOf(
  replay: readonly { event: TimelineFact; snapshot: AnyMachineSnapshot }[],
): TimelineEntry[] {
  let steps: readonly TimelineEntry[] = [];
  for (const s of replay) steps = foldStep(steps, s.event, s.snapshot);
  return [...steps];
}

/** The steps a view at `version` shows, as the wire has them. */
export function stepsUpTo(steps: readonly TimelineEntry[], version: number): LaunchTimelineStep[] {
  return steps
    .filter((s) => s.version <= version)
    .map(({ step, fact, at }) => ({ step, fact, at }));
}
