/**
 * W3C traceparent handling and spans over @opentelemetry/api: without an SDK a span is the API's
 * no-op and the trace still travels (minted span ids); with a tracer provider registered (as an
 * operator's exporter would be) the spans are real, parented on the launch's trace, and their own
 * ids are what goes onward.
 */
import {
  trace,
  type Span,
  type SpanContext,
  type SpanOptions,
  type Context,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import {
  childOf,
  formatTraceparent,
  inSpan,
  mintTrace,
  parseTraceparent,
  traceIdOf,
} from '../../../src/shared/trace.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

describe('traceparent values', () => {
  it('given a valid version-00 value, when parsed, then its ids and sampled flag come back', () => {
    expect(parseTraceparent(`00-${T}-${S}-01`)).toEqual({ traceId: T, spanId: S, sampled: true });
    expect(parseTraceparent(`00-${T}-${S}-00`)?.sampled).toBe(false);
    expect(formatTraceparent({ traceId: T, spanId: S, sampled: true })).toBe(`00-${T}-${S}-01`);
    expect(traceIdOf(`00-${T}-${S}-01`)).toBe(T);
  });

  it.each([
    undefined,
    '',
    'garbage',
    `01-${T}-${S}-01`,
    `00-${T.toUpperCase()}-${S}-01`,
    `00-${'0'.repeat(32)}-${S}-01`,
    `00-${T}-${'0'.repeat(16)}-01`,
    `00-${T}-${S}-1`,
    `00-${T}-${S}-01-extra`,
  ])('given %j, when parsed, then it is refused (a trace starts afresh)', (v) => {
    expect(parseTraceparent(v)).toBeUndefined();
  });

  it('given a parent, when a child is made, then it keeps the trace and gets a new span id', () => {
    const parent = { traceId: T, spanId: S, sampled: true };
    const child = childOf(parent);
    expect(child.traceId).toBe(T);
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(S);
    const fresh = mintTrace();
    expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh.traceId).not.toBe(mintTrace().traceId);
  });
});

/** A tracer provider that records what it is asked to start, with ids of its own. */
class RecordingProvider implements TracerProvider {
  readonly started: { name: string; parent: SpanContext | undefined; own: SpanContext }[] = [];
  readonly ended: string[] = [];
  private n = 0;
  getTracer(): Tracer {
    const startSpan = (name: string, _o?: SpanOptions, ctx?: Context): Span => {
      const parent = ctx ? trace.getSpanContext(ctx) : undefined;
      const own: SpanContext = {
        traceId: parent?.traceId ?? 'ab'.repeat(16),
        spanId: (++this.n).toString(16).padStart(16, '0'),
        traceFlags: 1,
      };
      this.started.push({ name, parent, own });
      const span = trace.wrapSpanContext(own);
      const end = span.end.bind(span);
      span.end = () => {
        this.ended.push(name);
        end();
      };
      return span;
    };
    return {
      startSpan,
      startActiveSpan: () => {
        throw new Error('not used');
      },
    };
  }
}

// The first test runs before any provider is registered, the second after (as an operator's
// SDK would register one at start): the order is the point, so they share one global.
describe('spans', () => {
  it('given no SDK, when a span runs, then the onward traceparent continues the trace with a minted span id', async () => {
    const parent = { traceId: T, spanId: S, sampled: true };
    const onward = await inSpan('fly.create', parent, {}, async (tp) => tp);
    const p = parseTraceparent(onward);
    expect(p?.traceId).toBe(T);
    expect(p?.spanId).not.toBe(S);
    // No parent and no SDK: a new trace.
    const root = parseTraceparent(await inSpan('POST /launches', undefined, {}, async (tp) => tp));
    expect(root?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('given a registered tracer provider, when a span runs, then it is parented on the launch and its own id goes onward', async () => {
    const provider = new RecordingProvider();
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    const parent = { traceId: T, spanId: S, sampled: true };
    const onward = await inSpan('fly.create', parent, { 'wm.region': 'ams' }, async (tp) => tp);
    expect(provider.started).toHaveLength(1);
    const [s] = provider.started;
    expect(s!.name).toBe('fly.create');
    expect(s!.parent).toMatchObject({ traceId: T, spanId: S });
    expect(onward).toBe(`00-${T}-${s!.own.spanId}-01`);
    expect(provider.ended).toEqual(['fly.create']);
    // A failure ends the span too, and is not swallowed.
    await expect(
      inSpan('vm.callback', parent, {}, () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(provider.ended).toEqual(['fly.create', 'vm.callback']);
  });
});
