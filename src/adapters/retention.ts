/**
 * Retention's rule, one for the file and the JetStream event stores (ADR 0013, 0014): which
 * finished streams a retention pass moves out of the live store.
 */

/**
 * Which closed streams (last fact `meta.closes`) stay live: those closed less than `maxAgeMs` ago
 * (by the closing fact's time) and only the `maxClosedStreams` most recently closed. Open streams
 * always stay. Without either bound, retention keeps everything.
 */
export interface RetentionRule {
  readonly maxAgeMs?: number;
  readonly maxClosedStreams?: number;
}

/** A closed stream as a store's retention pass sees it. */
export interface ClosedStreamMark<K> {
  readonly key: K;
  /** The closing fact's time (ms). */
  readonly closedAt: number;
  /** Its place in store order: of two streams closed in the same ms, the later one is newer. */
  readonly order: number;
}

/** Whether the rule can ever let a stream go (a store without one archives nothing). */
export function archivesAnything(rule: RetentionRule | undefined): rule is RetentionRule {
  return rule?.maxAgeMs !== undefined || rule?.maxClosedStreams !== undefined;
}

/** The closed streams the rule no longer keeps, measured at `now`. */
export function dueForArchive<K>(
  closed: ClosedStreamMark<K>[],
  rule: RetentionRule,
  now: number,
): Set<K> {
  const { maxAgeMs, maxClosedStreams } = rule;
  const due = new Set<K>();
  if (maxAgeMs !== undefined) {
    for (const c of closed) if (c.closedAt < now - maxAgeMs) due.add(c.key);
  }
  if (maxClosedStreams !== undefined && closed.length > maxClosedStreams) {
    closed.sort((a, b) => b.closedAt - a.closedAt || b.order - a.order);
    for (const c of closed.slice(maxClosedStreams)) due.add(c.key);
  }
  return due;
}
