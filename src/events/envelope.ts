/**
 * The envelope every fact travels in: `{ id, type, stream, at, v, data, meta }`. Decoding checks the
 * envelope and the payload against the fact catalogue and returns a typed error, never throws.
 */
import { z } from 'zod';
import {
  factSchemas,
  isFactType,
  type ChartEvent,
  type FactData,
  type FactType,
} from '../../machines/facts.js';
import { EventDecodeError } from '../shared/errors.js';
import { STREAM_NAME_PATTERN, ULID_PATTERN } from '../../machines/vocabulary.js';

/** Payload schema version. Bumped only with a new schema; old versions stay decodable. */
export const EVENT_VERSION = 1;

export const ulid = z.string().regex(ULID_PATTERN, 'expected a ULID');
/** `launch.<id>`, `vm.<id>`, `autospawner.main`, `pool.<region>`: a chart name and an actor id. */
export const streamName = z.string().regex(STREAM_NAME_PATTERN, 'bad stream name');

export const eventMeta = z.object({
  /** The chart (and version) that took this fact, e.g. `launch.v1`. */
  chart: z.string().max(32).optional(),
  /** The fact this one was derived from (a routed copy, an effect's result). */
  causationId: ulid.optional(),
  /** The launch (or other unit of work) this belongs to, for tracing across streams. */
  correlationId: z.string().max(64).optional(),
  /** The instance that appended it. */
  instance: z.string().max(64).optional(),
  /** This fact finished its actor: nothing follows it, and boot need not fold the stream. */
  closes: z.literal(true).optional(),
});
export type EventMeta = z.infer<typeof eventMeta>;

const envelopeShape = z.object({
  id: ulid,
  type: z.string().min(1).max(64),
  stream: streamName,
  at: z.iso.datetime({ offset: false }),
  v: z.number().int().positive(),
  data: z.unknown(),
  meta: eventMeta,
});

export interface EventEnvelope<T extends FactType = FactType> {
  readonly id: string;
  readonly type: T;
  readonly stream: string;
  /** ISO 8601, UTC, millisecond precision. */
  readonly at: string;
  readonly v: number;
  readonly data: FactData<T>;
  readonly meta: EventMeta;
}

/** An envelope as the store returns it: with its place in its stream and in the whole store. */
export type StoredEvent = EventEnvelope & { readonly version: number; readonly position: number };

export type Decoded = { ok: true; event: EventEnvelope } | { ok: false; error: EventDecodeError };

export function decodeEvent(raw: unknown): Decoded {
  const env = envelopeShape.safeParse(raw);
  if (!env.success) {
    return {
      ok: false,
      error: new EventDecodeError(`bad envelope: ${z.prettifyError(env.error)}`, raw),
    };
  }
  const { type } = env.data;
  if (!isFactType(type)) {
    return { ok: false, error: new EventDecodeError(`unknown event type "${type}"`, raw) };
  }
  if (env.data.v !== EVENT_VERSION) {
    return {
      ok: false,
      error: new EventDecodeError(`unsupported version ${env.data.v} of "${type}"`, raw),
    };
  }
  const data = factSchemas[type].safeParse(env.data.data);
  if (!data.success) {
    return {
      ok: false,
      error: new EventDecodeError(`bad "${type}" payload: ${z.prettifyError(data.error)}`, raw),
    };
  }
  return { ok: true, event: { ...env.data, type, data: data.data } };
}

/** Decode a JSON text (from a file line or a NATS message). */
export function decodeEventJson(text: string): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: new EventDecodeError(`not JSON: ${(err as Error).message}`, text) };
  }
  return decodeEvent(raw);
}

export function makeEnvelope<T extends FactType>(args: {
  id: string;
  type: T;
  stream: string;
  at: number;
  data: FactData<T>;
  meta?: EventMeta;
}): EventEnvelope<T> {
  return {
    id: args.id,
    type: args.type,
    stream: args.stream,
    at: new Date(args.at).toISOString(),
    v: EVENT_VERSION,
    data: args.data,
    meta: args.meta ?? {},
  };
}

/** The chart's view of a fact. */
export function toChartEvent(e: EventEnvelope): ChartEvent {
  return { ...(e.data as object), type: e.type, at: Date.parse(e.at), eventId: e.id } as ChartEvent;
}
