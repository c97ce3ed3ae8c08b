/**
 * Smoke test of the benchmark suite's own assumptions (no timing is asserted anywhere): the launch
 * driver takes a launch through its whole life with exactly the events the bench counts, the bare
 * floor reaches the same final states, and the report logic turns checks into PASS/MISS honestly.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { bareLaunch, bareListeningVm } from '../../../bench/lib/bare.js';
import { defer, runAllCleanups } from '../../../bench/lib/cleanup.js';
import { atMost, renderTable, row } from '../../../bench/lib/report.js';
import {
  DiscardingEventStore,
  EVENTS_PER_LAUNCH,
  NullLedger,
  makeRuntimeRig,
  runLaunch,
  withOpenStreams,
} from '../../../bench/lib/runtimeRig.js';
import { soakSection, soakSettings, soakSteps } from '../../../bench/sections/soak.js';
import { p50, p99, percentile } from '../../../bench/lib/stats.js';

describe('bench launch driver', () => {
  it('takes a launch from request to destroyed with the events the bench counts', async () => {
    const store = new MemoryEventStore();
    const rig = makeRuntimeRig(store);
    await rig.runtime.boot();
    try {
      const machineId = await runLaunch(rig);
      const events = [];
      for await (const e of store.readAll()) events.push(e);
      expect(events).toHaveLength(EVENTS_PER_LAUNCH);
      expect(events.filter((e) => e.stream === `vm.${machineId}`).map((e) => e.type)).toEqual([
        'fly.machineCreated',
        'fly.machineObserved',
        'vm.listening',
        'vm.stopping',
        'fly.machineObserved',
      ]);
      const launch = rig.runtime.actors('launch')[0]!;
      expect(launch.snapshot.status).toBe('done');
      expect(rig.runtime.actor(`vm.${machineId}`)?.snapshot.status).toBe('done');
      expect(rig.fly.live()).toHaveLength(0);
    } finally {
      await rig.close();
    }
  });

  it('makes idle vm actors on a store that keeps nothing', async () => {
    const rig = makeRuntimeRig(new DiscardingEventStore(), { ledger: new NullLedger() });
    await rig.runtime.boot();
    try {
      await rig.runtime.dispatch({
        type: 'fly.machineCreated',
        data: {
          machineId: 'smoke0001',
          region: 'ams',
          instanceId: 'i',
          state: 'started',
          createdAt: Date.now(),
        },
      });
      await rig.runtime.dispatch({
        type: 'vm.listening',
        data: { machineId: 'smoke0001', region: 'ams' },
      });
      expect(rig.runtime.actor('vm.smoke0001')?.snapshot.matches('listening')).toBe(true);
      expect(rig.runtime.actor('vm.smoke0001')?.version).toBe(2);
    } finally {
      await rig.close();
    }
  });

  it('drives the bare floor through the same states', () => {
    expect(() => bareLaunch(1)).not.toThrow();
    const vm = bareListeningVm(2);
    vm.stop();
  });
});

describe('bench report', () => {
  it('is PASS only when every check holds, INFO without checks', () => {
    expect(
      row({
        metric: 'm',
        value: 4,
        unit: 'ms',
        fmt: String,
        floor: 2,
        checks: [atMost(4, 5, '≤ 5'), atMost(2, 3, '≤ 3×')],
      }).status,
    ).toBe('PASS');
    const miss = row({
      metric: 'm',
      value: 8,
      unit: 'ms',
      fmt: String,
      floor: 2,
      checks: [atMost(8, 5, '≤ 5'), atMost(4, 3, '≤ 3×')],
    });
    expect(miss.status).toBe('MISS');
    expect(miss.target).toBe('≤ 5 ✗; ≤ 3× ✗');
    expect(miss.ratio).toBe('4.00×');
    expect(row({ metric: 'm', value: 1, unit: 'ms', fmt: String }).status).toBe('INFO');
    expect(atMost(Number.NaN, 5, 'x').ok).toBe(false);
    expect(renderTable([miss])).toContain('| floor');
  });

  it('uses nearest-rank percentiles (p99 of 20 samples is the maximum)', () => {
    const xs = Array.from({ length: 20 }, (_, i) => 20 - i);
    expect(p99(xs)).toBe(20);
    expect(p50(xs)).toBe(10);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('runs each cleanup once, newest first', async () => {
    const order: string[] = [];
    defer('a', () => void order.push('a'));
    const b = defer('b', () => void order.push('b'));
    await b();
    await b();
    await runAllCleanups();
    expect(order).toEqual(['b', 'a']);
  });
});

describe('replay bench history', () => {
  it('leaves every 10th actor stream open by dropping only its closing fact', async () => {
    const store = new MemoryEventStore();
    const rig = makeRuntimeRig(store);
    await rig.runtime.boot();
    try {
      for (let i = 0; i < 10; i++) await runLaunch(rig);
    } finally {
      await rig.close();
    }
    const all = [];
    for await (const e of store.readAll()) all.push(e);
    const r = withOpenStreams(all, 10);
    expect(r.streams).toBe(20);
    expect(r.open).toBe(2);
    expect(all.length - r.events.length).toBe(2);
    const replayed = new MemoryEventStore();
    for (const e of r.events) {
      const { version, position: _p, ...envelope } = e;
      await replayed.append(e.stream, [envelope], { expectedVersion: version - 1 });
    }
    const boot = makeRuntimeRig(replayed, { drives: () => false });
    try {
      const report = await boot.runtime.boot();
      expect(report.live).toBe(2);
    } finally {
      await boot.close();
    }
  });
});

describe('soak bench', () => {
  it('restarts at every chunk and checkpoint, from an empty store', () => {
    expect(soakSteps([5000, 20000, 50000], 5000)).toEqual([
      0, 5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000, 45000, 50000,
    ]);
    const s = soakSettings(false, {});
    expect(s.checkpoints).toEqual([5000, 20000, 50000]);
    expect(s.stores).toEqual(['file', 'nats']);
    expect(() => soakSettings(false, { BENCH_SOAK_STORES: 'redis' })).toThrow();
  });

  it('runs on the file store (tiny N) and reports every row', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      BENCH_SOAK_STORES: 'file',
      BENCH_SOAK_CHECKPOINTS: '10,20',
      BENCH_SOAK_CHUNK: '10',
      BENCH_SOAK_MAX_FINISHED: '4',
      BENCH_SOAK_BOOT_REPS: '1',
    });
    try {
      const out = await soakSection.run({ quick: true, shared: {}, progress: () => undefined });
      const metrics = out.rows.map((r) => r.metric);
      for (const m of [
        'file: floor: open + boot of an empty store',
        'file @ 20: open + boot',
        'file @ 20: heap after boot',
        'file @ 20: live log (events.log) after the retention pass',
        'file @ 20:   floor: raw read',
      ])
        expect(metrics.some((x) => x.startsWith(m))).toBe(true);
      const oom = out.rows.find((r) => r.metric.startsWith('file: never out of memory'))!;
      expect(oom.status).toBe('PASS');
      // Retention archived: something reached an archive segment.
      expect(
        out.rows.find((r) => r.metric.startsWith('file @ 20: archive'))!.raw.value,
      ).toBeGreaterThan(0);
    } finally {
      process.env = saved;
    }
  }, 120_000);
});
