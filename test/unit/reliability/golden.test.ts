/**
 * G13, golden histories: every stored history in test/fixtures/golden/<chart id>.json (recorded by
 * bench/reliability/recordGolden.ts from the charts of a release) still decodes, and today's runtime
 * folds it to the recorded final snapshot: replayed event by event, and rebuilt at boot. A chart
 * change that cannot replay stored history fails here; such a change needs a new chart id.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHARTS, type Chart } from '../../../machines/index.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../../../src/events/envelope.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { silentLogger } from '../../../src/shared/log.js';

const DIR = 'test/fixtures/golden';

interface GoldenFile {
  chart: string;
  commit: string;
  histories: { name: string; stream: string; events: StoredEvent[]; final: unknown }[];
}

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ f, golden: JSON.parse(readFileSync(join(DIR, f), 'utf8')) as GoldenFile }));

const chartOf = (id: string): Chart | undefined =>
  Object.values(CHARTS).find((c: Chart) => c.id === id);

/**
 * A runtime over a memory store that holds exactly this history (as stored, ids and all), decoded
 * as the file and NATS stores decode what they read (an old payload shape is upcast there).
 */
async function runtimeWith(h: GoldenFile['histories'][number]) {
  const store = new MemoryEventStore();
  const envelopes: EventEnvelope[] = h.events.map(({ version: _v, position: _p, ...envelope }) => {
    const decoded = decodeEvent(envelope);
    if (!decoded.ok) throw decoded.error;
    return decoded.event;
  });
  await store.append(h.stream, envelopes, { expectedVersion: 0 });
  const clock = new ManualClock(Date.parse(h.events.at(-1)!.at));
  const runtime = new ActorRuntime({
    store,
    clock,
    timers: new ManualClock(0),
    ids: new UlidIds(),
    log: silentLogger(),
    instance: 'golden-test',
    runEffect: () => Promise.resolve([]),
    // Boot re-arms timers and re-drives intents only for driven actors: none here, this is a read.
    drives: () => false,
  });
  return { store, runtime };
}

describe('G13: golden histories', () => {
  it('has histories for every chart of today', () => {
    const recorded = new Set(files.map((x) => x.golden.chart));
    for (const c of Object.values(CHARTS)) expect(recorded.has(c.id), c.id).toBe(true);
    for (const { f, golden } of files) {
      expect(f).toBe(`${golden.chart}.json`);
      expect(golden.histories.length, f).toBeGreaterThan(0);
    }
  });

  describe.each(files.map((x) => [x.f, x.golden] as const))('%s', (f, golden) => {
    const chart = chartOf(golden.chart);

    it("names a chart today's runtime folds with", () => {
      // A chart id that is gone means its stored streams no longer fold: keep the old chart.
      expect(chart?.id, `${f}: no chart ${golden.chart}`).toBe(golden.chart);
    });

    it('holds events that still decode, with contiguous versions', () => {
      for (const h of golden.histories) {
        expect(
          h.events.map((e) => e.version),
          h.name,
        ).toEqual(h.events.map((_, i) => i + 1));
        for (const e of h.events) {
          const { version: _v, position: _p, ...envelope } = e;
          const decoded = decodeEvent(JSON.parse(JSON.stringify(envelope)));
          expect(decoded.ok ? 'ok' : decoded.error.message, `${h.name} @${e.version}`).toBe('ok');
          expect(e.meta.chart, h.name).toBe(golden.chart);
        }
      }
    });

    it('replays every history to its recorded final snapshot', async () => {
      expect(chart).toBeDefined();
      for (const h of golden.histories) {
        const { store, runtime } = await runtimeWith(h);
        const steps = await runtime.replay(h.stream);
        expect(steps, h.name).toHaveLength(h.events.length);
        const last = steps.at(-1)!.snapshot;
        expect(chart!.machine.getPersistedSnapshot(last), h.name).toEqual(h.final);
        await runtime.close(0);
        await store.close();
      }
    });

    it('rebuilds every open actor at boot to its recorded final snapshot; a finished one is closed', async () => {
      for (const h of golden.histories) {
        const { store, runtime } = await runtimeWith(h);
        await runtime.boot();
        const final = h.final as { status: string };
        if (final.status === 'active') {
          const rec = runtime.actor(h.stream);
          expect(rec?.version, h.name).toBe(h.events.length);
          expect(chart!.machine.getPersistedSnapshot(rec!.snapshot), h.name).toEqual(h.final);
        } else {
          // A finished stream's last fact says so, and boot skips it (read on demand instead).
          expect(h.events.at(-1)!.meta.closes, h.name).toBe(true);
          expect(h.events.slice(0, -1).some((e) => e.meta.closes)).toBe(false);
        }
        await runtime.close(0);
        await store.close();
      }
    });
  });
});
