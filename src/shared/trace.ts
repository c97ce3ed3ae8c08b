/**
 * One trace per launch: W3C `traceparent` values (parse, mint, format) and spans through
 * `@opentelemetry/api`, so an operator who registers an OpenTelemetry SDK gets real spans, and
 * without one every span is the API's no-op (docs/adr/0021-one-trace-per-launch.md).
 */
import { randomFillSync } from 'node:crypto';
import { TRACEPARENT_PATTERN } from '../../machines/vocabulary.js';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  isSpanContextValid,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';

/** The header (and Fly metadata key, and SSE field) that carries a trace across hops. */
export const TRACEPARENT = 'traceparent';

/** Longest traceparent a version 00 value can have (stored in facts, so bounded). */
export const TRACEPARENT_LENGTH = 55;

export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  /** True when the caller sampled the trace (flags bit 0). */
  readonly sampled: boolean;
}

/** A valid traceparent, or undefined (absent, malformed, all-zero ids: W3C says start afresh). */
export function parseTraceparent(value: string | undefined | null): TraceParent | undefined {
  // `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`: one pattern, the facts' own.
  const v = value?.trim();
  if (!v || !TRACEPARENT_PATTERN.test(v)) return undefined;
  const [traceId, spanId, flags] = [v.slice(3, 35), v.slice(36, 52), v.slice(53, 55)];
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(t: TraceParent): string {
  return `00-${t.traceId}-${t.spanId}-${t.sampled ? '01' : '00'}`;
}

/** A new span id under the same trace: what a hop sends onward as its own position. */
export function childOf(parent: TraceParent): TraceParent {
  return { ...parent, spanId: randomHex(8) };
}

/** A trace that starts here (no valid incoming traceparent). Sampled: every launch is worth one. */
export function mintTrace(): TraceParent {
  return { traceId: randomHex(16), spanId: randomHex(8), sampled: true };
}

/** The trace id of a traceparent value, for log lines; undefined when there is none. */
export function traceIdOf(value: string | undefined): string | undefined {
  // Stored values were checked when their fact was decoded: slice those without a regex.
  if (value?.length === TRACEPARENT_LENGTH && value.startsWith('00-')) return value.slice(3, 35);
  return parseTraceparent(value)?.traceId;
}

/** Random bytes drawn from a pool refilled 4 KB at a time: one syscall per ~300 ids, not per id. */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (used + bytes > pool.length) {
      randomFillSync(pool);
      used = 0;
    }
    const hex = pool.toString('hex', used, (used += bytes));
    if (!/^0+$/.test(hex)) return hex;
  }
}

/** The API's proxy tracer: it delegates to whatever provider is registered, even later. */
const tracer = trace.getTracer('wheremachines');

function spanContextOf(t: TraceParent): SpanContext {
  return {
    traceId: t.traceId,
    spanId: t.spanId,
    traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
}

/**
 * A span under `parent` (a launch's traceparent) around `fn`; `fn` is given the traceparent to send
 * onward. With an SDK registered that is the new span's own id; without one the API's no-op span
 * has no id of its own, so a span id minted for this hop stands in (and a new trace id when there
 * is no parent either).
 */
export async function inSpan<T>(
  name: string,
  parent: TraceParent | undefined,
  attributes: Attributes,
  fn: (traceparent: string, span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, spanContextOf(parent)) : ROOT_CONTEXT;
  const span = tracer.startSpan(name, { kind, attributes }, ctx);
  try {
    return await fn(onward(span, parent), span);
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** The traceparent a span hands to the next hop (a new trace when there is no parent and no SDK). */
function onward(span: Span, parent: TraceParent | undefined): string {
  const own = span.spanContext();
  // The no-op span repeats its parent's ids; a recording one has ids of its own.
  if (isSpanContextValid(own) && own.spanId !== parent?.spanId) {
    return formatTraceparent({
      traceId: own.traceId,
      spanId: own.spanId,
      sampled: (own.traceFlags & 1) === 1,
    });
  }
  return formatTraceparent(parent ? childOf(parent) : mintTrace());
}

export { SpanKind };
