/**
 * The autospawner through the landing app: a visitor (an open fleet stream) makes it launch short
 * machines every interval; leaving stops it; coming and going never starts a second loop; the cap
 * and the operator's switch hold.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AUTOSPAWNER_STREAM } from '../../../machines/index.js';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { silentLogger } from '../../../src/shared/log.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, testConfig, whereRig, type WhereRig } from '../../support/whereRig.js';

const INTERVAL = 1000;

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
const systems: WhereSystem[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  // fetch opens a spare socket after an aborted stream, which would hold close() for seconds.
  rig?.system.publicApp.server.closeAllConnections();
  await rig?.stop();
  rig = undefined;
  for (const s of systems.splice(0).reverse()) {
    s.publicApp.server.closeAllConnections();
    await s.stop();
  }
});

/** A visitor: an open fleet stream, once the server has sent it the fleet. */
async function visit(r: WhereRig): Promise<SseReader> {
  const sse = await openSse(`${r.base}/events`);
  readers.push(sse);
  expect(sse.status).toBe(200);
  await expect.poll(() => sse.frames.some((f) => f.event === 'fleet')).toBe(true);
  return sse;
}

/** Times of the spawns the autospawner took (its stored spawn timer firings). */
async function spawnTimes(r: WhereRig): Promise<number[]> {
  return (await r.store.read(AUTOSPAWNER_STREAM))
    .filter((e) => e.type === 'clock.spawnElapsed')
    .map((e) => Date.parse(e.at));
}

const autoMachines = (r: WhereRig) => r.fly.ledger().filter((m) => m.metadata.source === 'auto');
const view = (r: WhereRig) => r.system.services.autospawn.view();
const spawnArmed = (r: WhereRig) =>
  r.system.services.runtime.pendingTimers(AUTOSPAWNER_STREAM).has('spawn');

const switchTo = (r: WhereRig, on: boolean) =>
  fetch(`${r.base}/dash/autospawner`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ on }),
  });

describe('the autospawner, driven by visitors', () => {
  it('spawns auto machines with the auto TTL while a visitor watches, and stops when the visitor leaves', async () => {
    // Default inactivity (10 min): only presence itself can stop the loop within this test.
    rig = await whereRig({
      WM_AUTOSPAWN_INTERVAL_MS: String(INTERVAL),
      WM_TTL_AUTO_MS: '5000',
      WM_MAX_MACHINES: '50',
    });
    expect(view(rig).state).toBe('idle');
    expect(rig.fly.ledger()).toEqual([]);

    const visitor = await visit(rig);
    await expect.poll(() => autoMachines(rig!).length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    for (const m of autoMachines(rig)) {
      expect(m.metadata).toMatchObject({ source: 'auto', owner: 'test-1' });
      expect(m.metadata.launch_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
      const env = rig.fly.inputOf(m.id)!.env;
      expect(env.WM_TTL_MS).toBe('5000');
      expect(env.WM_SOURCE).toBe('auto');
      const requested = (await rig.store.read(`launch.${m.metadata.launch_id}`))[0]!;
      expect(requested.type).toBe('launch.requested');
      expect(requested.data).toMatchObject({ source: 'auto', ttlMs: 5000 });
    }
    // The first visitor's machine came at once; the map shows it as an auto one.
    await expect
      .poll(() =>
        visitor.frames.some(
          (f) => f.event === 'machine' && (f.data as { source: string }).source === 'auto',
        ),
      )
      .toBe(true);

    visitor.close();
    // Within a few heartbeats, not at the next presence re-statement (minutes away).
    await expect.poll(() => view(rig!).state, { timeout: 3000 }).toBe('idle');
    expect(view(rig).visitors).toBe(0);
    expect(spawnArmed(rig)).toBe(false);
    expect(view(rig).nextSpawnAt).toBeUndefined();
  });

  it('keeps one spawn loop however often visitors come and go', async () => {
    rig = await whereRig({ WM_AUTOSPAWN_INTERVAL_MS: String(INTERVAL), WM_MAX_MACHINES: '50' });
    for (let i = 0; i < 10; i++) (await visit(rig)).close();
    const stay = await visit(rig);
    // A second visitor alongside changes nothing either.
    const also = await visit(rig);
    also.close();
    await expect
      .poll(async () => (await spawnTimes(rig!)).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(4);
    stay.close();
    await expect.poll(() => view(rig!).state, { timeout: 3000 }).toBe('idle');

    const times = await spawnTimes(rig);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(0.8 * INTERVAL);
    // Every spawn made exactly one auto launch, and nothing spawned after the visitor left.
    const launches = rig.system.services.runtime
      .actors('launch')
      .filter((r) => (r.snapshot.context as { source: string }).source === 'auto');
    expect(launches).toHaveLength(times.length);
    expect(view(rig).spawns).toBe(times.length);
  });

  it('respects the cap: with one machine live and a cap of one, a spawn fails with capacity and creates nothing', async () => {
    rig = await whereRig({ WM_AUTOSPAWN_INTERVAL_MS: String(INTERVAL), WM_MAX_MACHINES: '1' });
    expect((await launch(rig)).status).toBe(202);
    await expect.poll(() => rig!.fly.live().length).toBe(1);

    await visit(rig);
    await expect.poll(() => view(rig!).spawns, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
    const auto = () =>
      rig!.system.services.runtime
        .actors('launch')
        .filter((r) => (r.snapshot.context as { source: string }).source === 'auto');
    await expect
      .poll(() => auto().length > 0 && auto().every((r) => r.snapshot.status === 'done'))
      .toBe(true);
    for (const r of auto()) {
      expect(r.snapshot.hasTag('failed')).toBe(true);
      expect((r.snapshot.context as { reason: string }).reason).toBe('capacity');
      expect((await rig.store.read(r.stream)).map((e) => e.type)).toEqual([
        'launch.requested',
        'capacity.exhausted',
      ]);
    }
    expect(rig.fly.count('create')).toBe(1);
    expect(autoMachines(rig)).toEqual([]);
  });

  it('obeys the operator switch at run time: off stops the loop, on resumes it', async () => {
    rig = await whereRig({ WM_AUTOSPAWN_INTERVAL_MS: String(INTERVAL), WM_MAX_MACHINES: '50' });
    await visit(rig);
    await expect.poll(() => autoMachines(rig!).length, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
    const dueBefore = Date.parse(view(rig).nextSpawnAt!);

    const off = await switchTo(rig, false);
    expect(off.status).toBe(200);
    expect(await off.json()).toMatchObject({ state: 'off', enabled: false, visitors: 1 });
    expect(spawnArmed(rig)).toBe(false);
    const spawnsWhenOff = (await spawnTimes(rig)).length;
    // The spawn that was due no longer happens: wait past its deadline (bounded, ~1 interval).
    await expect.poll(() => Date.now() > dueBefore + 300, { timeout: 3 * INTERVAL }).toBe(true);
    expect((await spawnTimes(rig)).length).toBe(spawnsWhenOff);
    expect(
      (await (await fetch(`${rig.base}/dash/autospawner`)).json()) as { state: string },
    ).toMatchObject({ state: 'off' });

    const on = await switchTo(rig, true);
    expect(on.status).toBe(200);
    expect(await on.json()).toMatchObject({ state: 'active', enabled: true });
    expect(spawnArmed(rig)).toBe(true);
    await expect
      .poll(async () => (await spawnTimes(rig!)).length, { timeout: 5000 })
      .toBeGreaterThan(spawnsWhenOff);
  });

  it('hears visitors on another instance within heartbeats: they start and stop the loop of the leader', async () => {
    // Two instances on shared coordination and store; the first one started leads.
    const shared = {
      store: new MemoryEventStore(),
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly: new FakeFlyMachines(),
    };
    const start = async (instance: string) => {
      const cfg = testConfig({
        WM_INSTANCE_ID: instance,
        WM_AUTOSPAWN_INTERVAL_MS: String(INTERVAL),
        WM_MAX_MACHINES: '50',
      });
      const system = await createWhere(
        cfg,
        {
          ...shared,
          clock: systemClock,
          timers: new SystemTimers(systemClock),
          ids: new UlidIds(),
          log: silentLogger(),
        },
        { beatMs: 200 },
      );
      systems.push(system);
      const urls = await system.start();
      return { system, base: urls.publicUrl! };
    };
    const a = await start('test-a');
    const b = await start('test-b');
    expect(a.system.services.cluster.isLeader()).toBe(true);
    expect(b.system.services.cluster.isLeader()).toBe(false);
    // Whoever leads at each moment (a stalled event loop could move the lease) speaks for the chart.
    const leader = () => [a, b].find((x) => x.system.services.cluster.isLeader()) ?? a;
    const leaderView = () => leader().system.services.autospawn.view();

    // The visitor is on the instance that does not lead.
    const visitor = await openSse(`${b.base}/events`);
    readers.push(visitor);
    await expect.poll(() => visitor.frames.some((f) => f.event === 'fleet')).toBe(true);
    // Default inactivity (10 min): only the heartbeats can carry this within the test.
    await expect.poll(() => leaderView().state, { timeout: 3000 }).toBe('active');
    await expect
      .poll(() => shared.fly.ledger().filter((m) => m.metadata.source === 'auto').length, {
        timeout: 3000,
      })
      .toBeGreaterThanOrEqual(1);

    visitor.close();
    await expect.poll(() => leaderView().state, { timeout: 3000 }).toBe('idle');
    for (const x of [a, b])
      expect(x.system.services.runtime.pendingTimers(AUTOSPAWNER_STREAM).has('spawn')).toBe(false);
  });
});
