/**
 * Ports: time. `Clock` says what time it is (epoch ms); `Timers` runs a callback at an absolute
 * time. Charts never read either: the runtime puts time into events.
 */
export interface Clock {
  now(): number;
}

export interface Timers {
  /** Run `fire` at epoch ms `at` (at once if `at` is past). Setting an existing key replaces it. */
  set(key: string, at: number, fire: () => void): void;
  clear(key: string): void;
  clearAll(): void;
  /** Keys currently armed, with their due times (for the debug endpoint and tests). */
  pending(): ReadonlyMap<string, number>;
}
