/**
 * Waits for a machine to reach a state (the Machines API's `/wait`): each one settles when the
 * state is reached, when its timeout passes, or when the emulator closes.
 */
import type { FlyMachineState } from '../ports/flyMachines.js';
import type { EmulatedMachine } from './machine.js';

export type WaitTarget = 'started' | 'stopped' | 'suspended' | 'destroyed';
export type WaitResult = 'ok' | 'timeout' | 'closing';

export class StateWaits {
  private readonly listeners = new Set<(m: EmulatedMachine) => void>();
  private readonly closers = new Set<() => void>();

  /** Tell the waits that a machine's state changed. */
  changed(m: EmulatedMachine): void {
    for (const l of [...this.listeners]) l(m);
  }

  /** Settle every wait with 'closing'. */
  closeAll(): void {
    for (const settle of [...this.closers]) settle();
  }

  /** Resolves 'ok' when the machine reaches `target` (a destroyed machine counts as stopped). */
  waitFor(m: EmulatedMachine, target: WaitTarget, timeoutMs: number): Promise<WaitResult> {
    const reached = (s: FlyMachineState): boolean =>
      s === target || (target === 'stopped' && s === 'destroyed');
    if (reached(m.state)) return Promise.resolve('ok');
    return new Promise((resolve) => {
      const done = (r: WaitResult): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.closers.delete(onClose);
        resolve(r);
      };
      const listener = (changed: EmulatedMachine): void => {
        if (changed === m && reached(m.state)) done('ok');
      };
      const onClose = (): void => done('closing');
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      this.listeners.add(listener);
      this.closers.add(onClose);
    });
  }
}
