/** Stored facts keep decoding after a field is renamed: old shapes are upcast by the fact schema. */
import { describe, expect, it } from 'vitest';
import { launchMachine } from '../../../machines/launch/launch.machine.js';
import { factSchemas, type ChartEvent } from '../../../machines/facts.js';
import { decodeEvent, toChartEvent, type StoredEvent } from '../../../src/events/envelope.js';
import { T0, ev, fold } from '../../support/charts.js';

const L = '01JZ0000000000000000000001';
const requested = ev(
  'launch.requested',
  {
    launchId: L,
    region: 'ams',
    source: 'button',
    owner: 'i1',
    readyTimeoutMs: 30_000,
    ttlMs: 600_000,
  },
  T0,
);
const reserved = ev('capacity.reserved', { launchId: L, live: 1, limit: 8 }, T0 + 5);

/** A `fly.createFailed` as stored before the rename: `retryable` meant "a machine may exist". */
function oldCreateFailed(retryable: boolean, at: number): StoredEvent {
  return {
    id: '01KT1GW6G00000000000000003',
    type: 'fly.createFailed',
    stream: `launch.${L}`,
    at: new Date(at).toISOString(),
    v: 1,
    data: { launchId: L, status: 0, message: 'timeout', retryable } as never,
    meta: { chart: 'launch.v1' },
    version: 3,
    position: 3,
  };
}

describe('fly.createFailed, stored before machineMayExist had its name', () => {
  it.each([true, false])(
    'given an old fact with retryable: %s, when decoded, then it carries machineMayExist instead',
    (retryable) => {
      const decoded = decodeEvent(oldCreateFailed(retryable, T0 + 100));
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) return;
      expect(decoded.event.data).toEqual({
        launchId: L,
        status: 0,
        message: 'timeout',
        machineMayExist: retryable,
      });
    },
  );

  it.each([true, false])(
    'given an old fact with retryable: %s, when folded, then it gives the same snapshot and effects as the new shape',
    (mayExist) => {
      const decoded = decodeEvent(oldCreateFailed(mayExist, T0 + 100));
      if (!decoded.ok) throw decoded.error;
      const old: ChartEvent = toChartEvent(decoded.event);
      const now = ev(
        'fly.createFailed',
        { launchId: L, status: 0, message: 'timeout', machineMayExist: mayExist },
        T0 + 100,
      );
      const a = fold(launchMachine, [requested, reserved, old]);
      const b = fold(launchMachine, [requested, reserved, now]);
      expect(a.snapshot.value).toBe(mayExist ? 'cleanup' : 'failed');
      expect(launchMachine.getPersistedSnapshot(a.snapshot)).toEqual(
        launchMachine.getPersistedSnapshot(b.snapshot),
      );
      expect(a.effects).toEqual(b.effects);
    },
  );

  it('given a payload carrying both names, when parsed, then it is refused', () => {
    const both = { launchId: L, status: 0, message: 'x', retryable: true, machineMayExist: false };
    expect(factSchemas['fly.createFailed'].safeParse(both).success).toBe(false);
  });
});
