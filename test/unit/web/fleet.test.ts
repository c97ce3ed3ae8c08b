import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fleetMachine, launchView, type FleetMachine } from '../../../src/where/wire.js';
import {
  EMPTY_FLEET,
  createFleetStore,
  fleetTransitions,
  selectMachineList,
  selectRegionCounts,
  selectRegionSummary,
  sameRegionCounts,
  sameRegionSummary,
} from '../../../src/where/web/fleet.store.js';
import {
  asFleetMachine,
  asLaunchView,
  parseFleetMessage,
  parseLaunchMessage,
} from '../../../src/where/web/fleet.validate.js';

const T = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString();
const machine = (id: string, region: string, over: Partial<FleetMachine> = {}): FleetMachine => ({
  machineId: id,
  region,
  status: 'started',
  source: 'button',
  createdAt: T(0),
  updatedAt: T(0),
  ...over,
});
const snapshot = (machines: FleetMachine[], at = T(10)) => ({
  machines,
  capacity: { live: machines.length, limit: 8 },
  at,
});

describe('fleet reducer', () => {
  it('a fleet message replaces everything and measures the clock offset', () => {
    const before = fleetTransitions.fleet(EMPTY_FLEET, {
      snapshot: snapshot([machine('a', 'fra'), machine('b', 'nrt')]),
    });
    const after = fleetTransitions.fleet(before, {
      snapshot: snapshot([machine('c', 'gru')], T(10)),
      receivedAt: Date.parse(T(7)),
    });
    expect(Object.keys(after.machines)).toEqual(['c']);
    expect(after.capacity).toEqual({ live: 1, limit: 8 });
    expect(after.synced).toBe(true);
    expect(after.clockOffsetMs).toBe(3_000);
  });

  it('machine upserts, and an older update never overwrites a newer one', () => {
    let ctx = fleetTransitions.machine(EMPTY_FLEET, {
      machine: machine('a', 'fra', { status: 'created', updatedAt: T(1) }),
    });
    ctx = fleetTransitions.machine(ctx, {
      machine: machine('a', 'fra', { status: 'listening', updatedAt: T(3) }),
    });
    expect(ctx.machines.a?.status).toBe('listening');
    const stale = fleetTransitions.machine(ctx, {
      machine: machine('a', 'fra', { status: 'started', updatedAt: T(2) }),
    });
    expect(stale).toBe(ctx);
    ctx = fleetTransitions.machine(ctx, { machine: machine('b', 'nrt') });
    expect(Object.keys(ctx.machines).sort()).toEqual(['a', 'b']);
  });

  it('machineGone removes, and is a no-op for an id it does not hold', () => {
    const ctx = fleetTransitions.fleet(EMPTY_FLEET, {
      snapshot: snapshot([machine('a', 'fra'), machine('b', 'nrt')]),
    });
    const gone = fleetTransitions.machineGone(ctx, { gone: { machineId: 'a', at: T(11) } });
    expect(Object.keys(gone.machines)).toEqual(['b']);
    const again = fleetTransitions.machineGone(gone, { gone: { machineId: 'a', at: T(12) } });
    expect(again.machines).toBe(gone.machines);
  });

  it('capacity replaces, unchanged capacity keeps the same context', () => {
    const ctx = fleetTransitions.capacity(EMPTY_FLEET, { capacity: { live: 2, limit: 8 } });
    expect(ctx.capacity).toEqual({ live: 2, limit: 8 });
    expect(fleetTransitions.capacity(ctx, { capacity: { live: 2, limit: 8 } })).toBe(ctx);
  });

  it('holds nothing special for ids like __proto__', () => {
    const ctx = fleetTransitions.machine(EMPTY_FLEET, { machine: machine('__proto__', 'fra') });
    const gone = fleetTransitions.machineGone(ctx, { gone: { machineId: '__proto__', at: T(1) } });
    expect(selectMachineList(gone)).toEqual([]);
  });

  it('selectors: machines by creation time, regions counted and sorted', () => {
    const ctx = fleetTransitions.fleet(EMPTY_FLEET, {
      snapshot: snapshot([
        machine('z', 'nrt', { createdAt: T(1) }),
        machine('y', 'fra', { createdAt: T(2) }),
        machine('x', 'nrt', { createdAt: T(0) }),
      ]),
    });
    expect(selectMachineList(ctx).map((m) => m.machineId)).toEqual(['x', 'z', 'y']);
    expect(selectRegionCounts(ctx)).toEqual([
      { code: 'fra', count: 1 },
      { code: 'nrt', count: 2 },
    ]);
  });
});

describe('fleet store', () => {
  it('select subscriptions fire on change only', () => {
    const store = createFleetStore();
    const seen: string[][] = [];
    store
      .select(selectRegionCounts, sameRegionCounts)
      .subscribe((c) => seen.push(c.map((x) => `${x.code}:${x.count}`)));
    store.trigger.fleet({ snapshot: snapshot([machine('a', 'fra')]) });
    store.trigger.machine({
      machine: machine('a', 'fra', { status: 'listening', updatedAt: T(5) }),
    }); // same regions
    store.trigger.machine({ machine: machine('b', 'fra') });
    store.trigger.machineGone({ gone: { machineId: 'a', at: T(6) } });
    store.trigger.machineGone({ gone: { machineId: 'b', at: T(7) } });
    expect(seen).toEqual([['fra:1'], ['fra:2'], ['fra:1'], []]);
  });

  it('the first snapshot notifies region watchers even when it is empty', () => {
    const store = createFleetStore();
    const seen: boolean[] = [];
    store.select(selectRegionSummary, sameRegionSummary).subscribe((s) => seen.push(s.synced));
    store.trigger.fleet({ snapshot: snapshot([]) });
    store.trigger.fleet({ snapshot: snapshot([]) });
    expect(seen).toEqual([true]);
  });

  it('transition() is pure: the store is unchanged', () => {
    const store = createFleetStore();
    const [next] = store.transition(store.getSnapshot(), {
      type: 'machine',
      machine: machine('a', 'fra'),
    });
    expect(Object.keys(next.context.machines)).toEqual(['a']);
    expect(store.getSnapshot().context.machines).toEqual({});
  });
});

describe('fleet messages are validated defensively', () => {
  it('ignores malformed messages without throwing', () => {
    const bad: [string, unknown][] = [
      ['fleet', 'not json'],
      ['fleet', '{"machines":"nope","capacity":{"live":1,"limit":8},"at":"x"}'],
      ['fleet', '{"machines":[],"at":"x"}'],
      ['machine', '{"machineId":1}'],
      ['machine', 'null'],
      ['machine', '[]'],
      ['machine', JSON.stringify({ ...machine('a', 'fra'), status: 'exploded' })],
      ['machineGone', '{}'],
      ['capacity', '{"live":1.5,"limit":8}'],
      ['capacity', undefined],
      ['somethingElse', '{}'],
    ];
    for (const [event, data] of bad) expect(parseFleetMessage(event, data)).toBeUndefined();
    expect(parseLaunchMessage('{')).toBeUndefined();
  });

  it('a snapshot keeps its well-formed machines when one row is malformed', () => {
    const msg = parseFleetMessage(
      'fleet',
      JSON.stringify({
        ...snapshot([machine('a', 'fra')]),
        machines: [machine('a', 'fra'), { machineId: 'b' }],
      }),
    );
    expect(msg?.event).toBe('fleet');
    expect(msg?.event === 'fleet' && msg.data.machines.map((m) => m.machineId)).toEqual(['a']);
  });

  it('accepts well-formed messages and strips unknown fields', () => {
    const msg = parseFleetMessage(
      'machine',
      JSON.stringify({ ...machine('a', 'fra'), extra: '<b>' }),
    );
    expect(msg).toEqual({ event: 'machine', data: machine('a', 'fra') });
    expect(parseFleetMessage('capacity', '{"live":3,"limit":8}')).toEqual({
      event: 'capacity',
      data: { live: 3, limit: 8 },
    });
    expect(parseFleetMessage('machineGone', '{"machineId":"a","at":"t"}')).toEqual({
      event: 'machineGone',
      data: { machineId: 'a', at: 't' },
    });
  });

  // The browser cannot ship zod, so its guards must agree with the wire schemas.
  const anyValue = fc.oneof(
    fc.string({ maxLength: 4 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const pick = <T>(good: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: anyValue });

  it('asFleetMachine agrees with the fleetMachine schema', () => {
    const arb = fc.record(
      {
        machineId: pick(fc.string()),
        region: pick(fc.constantFrom('fra', 'nrt', 'xyz')),
        status: pick(fc.constantFrom('created', 'started', 'listening', 'stopping', 'gone')),
        source: pick(fc.constantFrom('button', 'dash', 'auto', 'foreign', 'other')),
        launchId: pick(fc.string()),
        createdAt: pick(fc.constant(T(0))),
        updatedAt: pick(fc.constant(T(1))),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arb, (v) => {
        const ours = asFleetMachine(v);
        const zod = fleetMachine.safeParse(v);
        expect(ours !== undefined).toBe(zod.success);
        if (zod.success) expect(ours).toEqual(zod.data);
      }),
      { numRuns: 2000 },
    );
  });

  it('asLaunchView agrees with the launchView schema', () => {
    const arb = fc.record(
      {
        launchId: pick(fc.string()),
        status: pick(
          fc.constantFrom('requested', 'created', 'started', 'ready', 'failed', 'done', 'odd'),
        ),
        region: pick(fc.constantFrom('fra', 'xyz')),
        source: pick(fc.constantFrom('button', 'dash', 'auto', 'foreign')),
        machineId: pick(fc.string()),
        url: pick(fc.constant('https://example.test/m')),
        reason: pick(
          fc.constantFrom(
            'capacity',
            'rateLimited',
            'flyError',
            'readyTimeout',
            'machineLost',
            'bored',
          ),
        ),
        message: pick(fc.string()),
        at: pick(fc.constant(T(2))),
        requestedAt: pick(fc.constant(T(0))),
        version: pick(fc.integer({ min: -1, max: 9 })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arb, (v) => {
        const ours = asLaunchView(v);
        const zod = launchView.safeParse(v);
        expect(ours !== undefined).toBe(zod.success);
        if (zod.success) expect(ours).toEqual(zod.data);
      }),
      { numRuns: 2000 },
    );
  });
});
