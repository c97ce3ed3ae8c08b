/**
 * Who is watching this machine. Each page view registers a viewer; the machine may switch itself
 * off only when every viewer has finished its sequence or gone quiet, so one tab finishing never
 * cuts another tab's animation short.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../ports/clock.js';

export const VIEWER_ID = /^[A-Za-z0-9_-]{16}$/;

interface Viewer {
  lastSeen: number;
  done: boolean;
}

export type ViewersState =
  /** Nobody has come yet: only the TTL ends the machine. */
  | { kind: 'idle' }
  /** Someone is still watching; if nobody is heard from, the last of them goes quiet at `quietAt`. */
  | { kind: 'watching'; quietAt: number }
  /** Everyone who came has finished or gone quiet. */
  | { kind: 'finished' };

export class Viewers {
  private readonly viewers = new Map<string, Viewer>();

  constructor(
    private readonly clock: Clock,
    /** A viewer not heard from for this long counts as gone (closed tab, lost network). */
    readonly graceMs: number,
    private readonly max: number,
    private readonly newId: () => string = () => randomBytes(12).toString('base64url'),
  ) {}

  /** A new viewer's id, or undefined when the machine already has as many as it will take. */
  register(): string | undefined {
    if (this.viewers.size >= this.max) return undefined;
    const id = this.newId();
    this.viewers.set(id, { lastSeen: this.clock.now(), done: false });
    return id;
  }

  /** The viewer is still there. False for an unknown id. */
  touch(id: string): boolean {
    const v = this.viewers.get(id);
    if (!v) return false;
    v.lastSeen = this.clock.now();
    return true;
  }

  /** The viewer's sequence finished, or its page went away. False for an unknown id. */
  done(id: string): boolean {
    const v = this.viewers.get(id);
    if (!v) return false;
    v.done = true;
    v.lastSeen = this.clock.now();
    return true;
  }

  get size(): number {
    return this.viewers.size;
  }

  state(): ViewersState {
    if (this.viewers.size === 0) return { kind: 'idle' };
    const now = this.clock.now();
    let quietAt = -Infinity;
    for (const v of this.viewers.values()) {
      if (v.done) continue;
      const until = v.lastSeen + this.graceMs;
      if (until > now) quietAt = Math.max(quietAt, until);
    }
    return quietAt === -Infinity ? { kind: 'finished' } : { kind: 'watching', quietAt };
  }
}
