/**
 * Ports for cluster coordination: a named lease (one leader, taken over when it expires) and
 * presence (visitor counts per instance, expiring when an instance stops reporting).
 */
export interface Leases {
  /** Take or renew the lease for `ttlMs`; true if `holder` holds it afterwards. */
  acquire(name: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  holder(name: string, now: number): Promise<string | undefined>;
}

export interface Presence {
  /** Report this instance's visitor count; it expires after `ttlMs` unless reported again. */
  report(instance: string, visitors: number, ttlMs: number, now: number): Promise<void>;
  /** Sum over instances whose reports have not expired. */
  total(now: number): Promise<number>;
  /** Instances with live reports (used to tell whether an owner instance is alive). */
  instances(now: number): Promise<string[]>;
  withdraw(instance: string): Promise<void>;
}
