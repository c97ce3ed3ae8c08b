/**
 * Port: the event bus for facts that need not last (presence heartbeats, live debug feed).
 * Subjects are dot-separated tokens; `*` matches one token and `>` the rest, as in NATS.
 */
export interface EventBus {
  publish(subject: string, payload: unknown): void;
  /** Returns a function that ends the subscription. */
  subscribe(subject: string, onMessage: (payload: unknown, subject: string) => void): () => void;
  close(): Promise<void>;
}

/** Does a NATS-style subject pattern match a subject? */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
