/**
 * How Fly's machine states map onto the phases our charts track. Pure. Fly may add states; an
 * unknown one maps to nothing and changes nothing.
 */
export type Phase = 'created' | 'started' | 'stopping' | 'destroyed';

const PHASES: Record<string, Phase> = {
  creating: 'created',
  created: 'created',
  starting: 'created',
  started: 'started',
  restarting: 'started',
  updating: 'started',
  // A stopped machine counts as stopping: it still exists (and costs) until it is destroyed.
  stopping: 'stopping',
  stopped: 'stopping',
  suspending: 'stopping',
  suspended: 'stopping',
  failed: 'stopping',
  launch_failed: 'stopping',
  destroying: 'destroyed',
  destroyed: 'destroyed',
};

export function phaseOf(flyState: string): Phase | undefined {
  return Object.hasOwn(PHASES, flyState) ? PHASES[flyState] : undefined;
}
