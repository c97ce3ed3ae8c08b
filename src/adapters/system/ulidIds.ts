/** Adapter: monotonic ULIDs (sortable even within one millisecond). */
import { monotonicFactory } from 'ulid';
import type { Clock } from '../../ports/clock.js';
import type { Ids } from '../../ports/ids.js';

export class UlidIds implements Ids {
  private readonly factory = monotonicFactory();
  constructor(private readonly clock?: Clock) {}
  next(): string {
    return this.factory(this.clock?.now());
  }
}
