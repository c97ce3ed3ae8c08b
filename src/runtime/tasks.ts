/**
 * Work the runtime starts and does not await (effects, timer firings, folds from the store's feed):
 * tracked so that an escape is logged (never a crash), tests can wait for quiet, and shutdown can
 * wait for it, briefly.
 */
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { afterReal } from './realTime.js';

export class Tasks {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly log: Logger) {}

  track(p: Promise<unknown>): void {
    const guarded = p.catch((err: unknown) => {
      this.log.error({ err: errorMessage(err) }, 'runtime task failed');
    });
    this.inflight.add(guarded);
    void guarded.finally(() => this.inflight.delete(guarded));
  }

  /** Resolves when nothing is in flight, including what the tasks in flight start. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Wait for what is in flight now, for at most `graceMs` of real time (a shutdown's grace). */
  async drain(graceMs: number): Promise<void> {
    let cancel = () => {};
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise<void>((resolve) => (cancel = afterReal(graceMs, resolve))),
    ]);
    cancel();
  }
}
