/**
 * The emulator's latency profiles on a manual clock: the default is Fly's; a create pays the image
 * pull once per region and image, then the VM boot; a start pays the start latency and a stop the
 * teardown. No timed assertion: the clock only moves when the test moves it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import {
  FlyLocalEmulator,
  type FlyLocalHandle,
  type LatencyProfile,
} from '../../../src/flylocal/index.js';
import { LATENCY_PROFILES } from '../../../src/flylocal/latency.js';
import { FIXTURE_VM, TEST_APP, startTestFlyLocal } from '../../support/flyLocalHarness.js';

let local: FlyLocalHandle | undefined;
afterEach(async () => {
  await local?.close();
  local = undefined;
});

const config = (image = 'registry.fly.io/useless-machine:test') => ({
  image,
  init: { cmd: ['node', FIXTURE_VM] },
  services: [{ protocol: 'tcp', internal_port: 4040 }],
  restart: { policy: 'no' as const },
  stop_config: { signal: 'SIGTERM' as const, timeout: '5s' },
});

const at = (ms: number) => ({ minMs: ms, maxMs: ms });

async function start(profile: LatencyProfile | 'fly', clock: ManualClock): Promise<FlyLocalHandle> {
  local = await startTestFlyLocal({ profile, clock });
  return local;
}

const state = (id: string) => local!.emulator.machine(id)?.state;
const spawns = (id: string) => local!.emulator.machine(id)?.spawns ?? 0;

describe('flylocal latency profiles', () => {
  it('defaults to the fly profile, with creates in seconds and starts well under one', () => {
    const e = new FlyLocalEmulator({ killChildrenOnSignal: false });
    try {
      const p = e.latency.profile;
      expect(p).toEqual(LATENCY_PROFILES.fly);
      // Fly: a create is P90 under ~5 s (a cold image pull plus a boot); a start "well under a second".
      expect(p.imagePullMs.maxMs + p.createBootMs.maxMs).toBeLessThanOrEqual(5_000);
      expect(p.imagePullMs.minMs + p.createBootMs.minMs).toBeGreaterThanOrEqual(1_000);
      expect(p.startMs.maxMs).toBeLessThan(1_000);
      expect(p.startMs.maxMs).toBeLessThan(p.createBootMs.minMs);
    } finally {
      void e.close();
    }
    expect(LATENCY_PROFILES.fast).toEqual({
      imagePullMs: at(0),
      createBootMs: at(0),
      startMs: at(0),
      stopMs: at(0),
    });
  });

  it('pulls an image once per region, boots each create, starts and stops on the clock', async () => {
    const clock = new ManualClock(Date.now());
    const h = await start(
      { imagePullMs: at(2_000), createBootMs: at(1_000), startMs: at(300), stopMs: at(200) },
      clock,
    );
    const create = async (region: string, extra: Record<string, unknown> = {}) =>
      (await h.emulator.create(TEST_APP, { region, config: config(), ...extra })).id as string;

    const a = await create('ams');
    clock.advance(1_999); // the image is still being pulled
    expect([state(a), spawns(a)]).toEqual(['created', 0]);
    clock.advance(1); // pulled: the VM boots
    expect(state(a)).toBe('starting');
    clock.advance(999);
    expect(spawns(a)).toBe(0);
    clock.advance(1);
    expect(spawns(a)).toBe(1);
    await expect.poll(() => state(a), { timeout: 5_000 }).toBe('started');

    // Same image, same region: no pull, only the boot.
    const b = await create('ams');
    clock.advance(0);
    expect(state(b)).toBe('starting');
    clock.advance(1_000);
    expect(spawns(b)).toBe(1);

    // Another region pulls again; a create joining a pull under way waits for that one pull.
    const c = await create('syd');
    clock.advance(1_500);
    const d = await create('syd', { skip_launch: true });
    clock.advance(499);
    expect([state(c), state(d)]).toEqual(['created', 'created']);
    clock.advance(1); // the one pull ends for both
    expect(state(c)).toBe('starting');
    h.emulator.actions.start(TEST_APP, d);
    expect(state(d)).toBe('starting');
    clock.advance(300); // a start of an existing machine: 300 ms, not a boot
    expect(spawns(d)).toBe(1);
    expect(spawns(c)).toBe(0);
    clock.advance(700);
    expect(spawns(c)).toBe(1);
    await expect.poll(() => state(d), { timeout: 5_000 }).toBe('started');

    // A stop: the process ends, then the teardown holds `stopping` for the stop latency.
    h.emulator.stop(TEST_APP, a);
    await expect.poll(() => local!.emulator.machine(a)?.pid, { timeout: 5_000 }).toBeUndefined();
    expect(state(a)).toBe('stopping');
    clock.advance(199);
    expect(state(a)).toBe('stopping');
    clock.advance(1);
    expect(state(a)).toBe('stopped');

    // Starting it again: the start latency, then a new process.
    h.emulator.actions.start(TEST_APP, a);
    clock.advance(299);
    expect([state(a), spawns(a)]).toEqual(['starting', 1]);
    clock.advance(1);
    expect(spawns(a)).toBe(2);
    await expect.poll(() => state(a), { timeout: 5_000 }).toBe('started');
  });

  it('draws the fly profile within its ranges: a first create waits at least the pull and boot minima', async () => {
    const clock = new ManualClock(Date.now());
    const h = await start('fly', clock);
    const fly = LATENCY_PROFILES.fly;
    const id = (await h.emulator.create(TEST_APP, { region: 'ams', config: config() }))
      .id as string;
    clock.advance(fly.imagePullMs.minMs + fly.createBootMs.minMs - 1);
    expect(spawns(id)).toBe(0);
    clock.advance(fly.imagePullMs.maxMs + fly.createBootMs.maxMs);
    expect(spawns(id)).toBe(1);
    await expect.poll(() => state(id), { timeout: 5_000 }).toBe('started');
  });
});
