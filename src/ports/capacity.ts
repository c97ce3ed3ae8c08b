/**
 * Port: the cluster-wide cap on live Useless Machines. A holder (a launch, or a machine nobody here
 * launched) takes a slot; a reservation is atomic, so concurrent clicks can never exceed the cap.
 * Slots expire at `until` so a holder that vanished cannot leak capacity forever.
 */
export interface CapacityHold {
  readonly holder: string;
  readonly until: number;
}

export type ReserveResult =
  { readonly ok: true; readonly live: number } | { readonly ok: false; readonly live: number };

export interface CapacityLedger {
  /** Take a slot if fewer than `limit` are held (expired slots do not count). Idempotent per holder. */
  reserve(holder: string, limit: number, now: number, until: number): Promise<ReserveResult>;
  /** Take a slot even over the limit (a machine that exists whether we like it or not). */
  hold(holder: string, now: number, until: number): Promise<void>;
  release(holder: string): Promise<void>;
  holds(now: number): Promise<CapacityHold[]>;
}
