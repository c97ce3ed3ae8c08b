/** Test builders for envelopes: valid by default, overridable per field. */
import { monotonicFactory } from 'ulid';
import { makeEnvelope, type EventEnvelope } from '../../src/events/envelope.js';
import type { FactData, FactType } from '../../machines/facts.js';

const ulid = monotonicFactory();
export const newId = (): string => ulid();

let clockMs = Date.UTC(2026, 5, 1);

export function anEvent<T extends FactType = 'presence.changed'>(
  stream: string,
  type?: T,
  data?: FactData<T>,
  at?: number,
): EventEnvelope<T> {
  const t = (type ?? 'presence.changed') as T;
  const d = (data ?? { visitors: 1, roll: 0.5 }) as FactData<T>;
  return makeEnvelope({ id: ulid(), type: t, stream, at: at ?? (clockMs += 1000), data: d });
}

/** A unique stream name per call, so contract suites never see each other's data. */
let n = 0;
export function aStream(kind: 'launch' | 'vm' | 'autospawner' = 'autospawner'): string {
  return `${kind}.t${process.pid}x${Date.now().toString(36)}x${n++}`;
}
