/**
 * The cap and one-machine-per-launch through crashes and API faults, reproduced deterministically:
 * the real landing app (createWhere) on a manual clock, the Fly fake with scripted faults and held
 * calls, and "crashes" that throw away a process's memory (its ledger included) and boot a new one
 * on the same store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyMachineSnapshot } from 'xstate';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { makeEnvelope } from '../../../src/events/envelope.js';
import { AppError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/log.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import { testConfig } from '../../support/whereRig.js';

const READY_MS = 15_000;
const cfg = testConfig({
  WM_MAX_MACHINES: '2',
  WM_AUTOSPAWN: '0',
  WM_READY_TIMEOUT_MS: String(READY_MS),
  WM_TTL_BUTTON_MS: '60000',
  WM_RECONCILE_INTERVAL_MS: '3600000',
});

interface Proc {
  system: WhereSystem;
  ledger: MemoryCapacityLedger;
  /** The process dies: it acts no more; its memory (the ledger too) is gone. */
  crash(): Promise<void>;
}

const running: WhereSystem[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

/** One landing process over a store that outlives it. */
async function boot(store: MemoryEventStore, fly: FakeFlyMachines, clock: ManualClock) {
  const ledger = new MemoryCapacityLedger();
  const system = await createWhere(
    cfg,
    {
      store,
      ledger,
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: clock,
      ids: new UlidIds(clock),
      log: silentLogger(),
    },
    { beatMs: 60_000, random: () => 0.5 },
  );
  await system.start(false);
  running.push(system);
  const proc: Proc = {
    system,
    ledger,
    // Closing the runtime at once stops it taking facts (what a dead process does); effects still
    // in flight can no longer record anything.
    crash: () => system.services.runtime.close(0),
  };
  return proc;
}

/** A manual clock and the Fly fake on it: the world every test's processes share. */
function world() {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  return { clock, fly: new FakeFlyMachines({ clock, timers: clock }) };
}

const launch = (p: Proc) => p.system.services.launches.start({ region: 'ams', source: 'button' });
const settle = (p: Proc) => p.system.services.runtime.settled();
const stateOf = (p: Proc, id: string): AnyMachineSnapshot | undefined =>
  p.system.services.runtime.actor(`launch.${id}`)?.snapshot;
const machinesOf = (fly: FakeFlyMachines, launchId: string) =>
  fly.ledger().filter((m) => m.metadata.launch_id === launchId);

describe('the cap survives a crash', () => {
  it('after a restart, the machines still running hold their slots: no launch past the cap', async () => {
    const { clock, fly } = world();
    const store = new MemoryEventStore();
    const first = await boot(store, fly, clock);
    await launch(first);
    await launch(first);
    await settle(first);
    expect(fly.live()).toHaveLength(2);
    await first.crash();

    const second = await boot(store, fly, clock);
    expect(await second.ledger.holds(clock.now())).toHaveLength(2);
    await expect(launch(second)).rejects.toMatchObject({ code: 'CAPACITY', statusCode: 503 });
    await settle(second);
    expect(fly.live()).toHaveLength(2);
  });

  it('a launch that was only requested asks the ledger again, and gets no slot past the cap', async () => {
    const { clock, fly } = world();
    const store = new MemoryEventStore();
    const first = await boot(store, fly, clock);
    await launch(first);
    await launch(first);
    await settle(first);
    // A third launch is recorded as requested, then the process dies before the ledger answers.
    const runtime = first.system.services.runtime;
    await first.crash();
    const pendingId = '01JZ00000000000000000000P1';
    await store.append(
      `launch.${pendingId}`,
      [
        makeEnvelope({
          id: '01JZ00000000000000000000E1',
          type: 'launch.requested',
          stream: `launch.${pendingId}`,
          at: clock.now(),
          data: {
            launchId: pendingId,
            region: 'ams',
            source: 'button',
            owner: cfg.instance,
            readyTimeoutMs: READY_MS,
            ttlMs: 60_000,
          },
          meta: { chart: 'launch.v1', instance: cfg.instance },
        }),
      ],
      { expectedVersion: 0 },
    );
    expect(runtime.actor(`launch.${pendingId}`)).toBeUndefined();

    const second = await boot(store, fly, clock);
    await settle(second);
    const s = stateOf(second, pendingId);
    expect(s?.value).toBe('failed');
    expect((s?.context as { reason?: string }).reason).toBe('capacity');
    expect(fly.live()).toHaveLength(2);
  });
});

describe('one machine per launch', () => {
  it('a create whose answer was lost, swept while its lookup hung, is never followed by a second', async () => {
    // The interleaving behind a duplicate: create #1 makes A but its answer is lost; the lookup
    // that should find A hangs; the ready deadline passes, the sweep finds and destroys A (its name
    // is free again); then the lookup answers "nothing", and a blind second create would make B.
    const { clock, fly } = world();
    const store = new MemoryEventStore();
    const p = await boot(store, fly, clock);
    await settle(p); // the reconciler's first list is done: the next list is the lookup
    fly.failNext('create', { status: 0, message: 'socket hang up', commit: true });
    const lookup = fly.holdNext('list');
    const view = await launch(p);
    await expect.poll(() => fly.ledger().length).toBe(1);
    clock.advance(READY_MS + 1);
    await expect.poll(() => fly.live().length).toBe(0);
    lookup();
    await settle(p);
    expect(machinesOf(fly, view.launchId)).toHaveLength(1);
    expect(stateOf(p, view.launchId)?.value).toBe('failed');
  });

  it('a create re-driven after a crash does not replace a machine that was already destroyed', async () => {
    const { clock, fly } = world();
    const store = new MemoryEventStore();
    const first = await boot(store, fly, clock);
    await settle(first);
    fly.failNext('create', { status: 0, message: 'socket hang up', commit: true });
    const lookup = fly.holdNext('list');
    const view = await launch(first);
    await expect.poll(() => fly.ledger().length).toBe(1);
    // The process dies while it looks for the machine; the machine is destroyed meanwhile (an
    // operator, or another instance's sweep), so Fly would accept its name again.
    await first.crash();
    lookup();
    await fly.destroy(fly.ledger()[0]!.id, { force: true });

    const second = await boot(store, fly, clock);
    await settle(second);
    expect(machinesOf(fly, view.launchId)).toHaveLength(1);
    const s = stateOf(second, view.launchId);
    expect(s?.value).toBe('failed');
    expect(s?.status).toBe('done');
  });

  it('a create queued behind the rate limit is withdrawn when its launch gives up', async () => {
    const { clock, fly } = world();
    const queued = fly.holdNext('create');
    const store = new MemoryEventStore();
    const p = await boot(store, fly, clock);
    const view = await launch(p);
    clock.advance(READY_MS + 1);
    await expect.poll((): unknown => stateOf(p, view.launchId)?.value).toBe('cleanup');
    queued();
    await settle(p);
    expect(fly.ledger()).toHaveLength(0);
    expect(fly.calls.filter((c) => c.op === 'create' && c.machineId)).toHaveLength(0);
  });

  it('refuses with a stable error, not a crash, when the cap is reached', async () => {
    const { clock, fly } = world();
    const p = await boot(new MemoryEventStore(), fly, clock);
    await launch(p);
    await launch(p);
    const refused = await launch(p).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'CAPACITY' });
  });
});

describe('every launch ends', () => {
  it('a create with an unknown outcome that made nothing ends the launch at once, not after four sweeps', async () => {
    const { clock, fly } = world();
    const p = await boot(new MemoryEventStore(), fly, clock);
    await settle(p);
    fly.failNext('create', { status: 503, message: 'busy' }, 2);
    const view = await launch(p);
    await settle(p);
    const s = stateOf(p, view.launchId);
    expect(s?.value).toBe('failed');
    expect(await p.ledger.holds(clock.now())).toEqual([]);
    expect(fly.ledger()).toHaveLength(0);
  });

  it("a launch whose machine's end reached only the machine's actor (a crash between the appends) ends at the next reconciliation", async () => {
    const { clock, fly } = world();
    const store = new MemoryEventStore();
    const first = await boot(store, fly, clock);
    const view = await launch(first);
    await settle(first);
    const machineId = fly.live()[0]!.id;
    const runtime = first.system.services.runtime;
    await runtime.dispatch({
      type: 'vm.listening',
      data: { machineId, launchId: view.launchId, region: 'ams' },
    });
    expect(stateOf(first, view.launchId)?.value).toBe('redirect');
    // The machine is destroyed; its actor records it, and the process dies before the launch does.
    await fly.destroy(machineId, { force: true });
    await runtime.apply(`vm.${machineId}`, {
      type: 'fly.machineDestroyed',
      data: { machineId, launchId: view.launchId },
    });
    await first.crash();

    clock.advance(60_000);
    const second = await boot(store, fly, clock);
    await second.system.services.reconciler.runOnce();
    await settle(second);
    expect(stateOf(second, view.launchId)?.value).toBe('destroyed');
    expect(await second.ledger.holds(clock.now())).toEqual([]);
  });

  it("a launch whose own sweeps the API keeps failing ends when the reconciler's list shows nothing for it", async () => {
    const { clock, fly } = world();
    const p = await boot(new MemoryEventStore(), fly, clock);
    await settle(p);
    // The create fails without making anything, and every lookup of the launch fails too.
    fly.failNext('create', { status: 503 }).failNext('list', { status: 503 }, 2);
    const view = await launch(p);
    await settle(p);
    expect(stateOf(p, view.launchId)?.value).toBe('cleanup');
    await p.system.services.reconciler.runOnce();
    await settle(p);
    expect(stateOf(p, view.launchId)?.value).toBe('failed');
    expect(await p.ledger.holds(clock.now())).toEqual([]);
  });

  it('a young machine missing from the list that Fly says is destroyed is gone at once', async () => {
    const { clock, fly } = world();
    const p = await boot(new MemoryEventStore(), fly, clock);
    const view = await launch(p);
    await settle(p);
    const machineId = fly.live()[0]!.id;
    await p.system.services.runtime.dispatch({
      type: 'vm.listening',
      data: { machineId, launchId: view.launchId, region: 'ams' },
    });
    // It dies unheard (its stopping report never arrived), well inside the list grace.
    await fly.destroy(machineId, { force: true });
    await p.system.services.reconciler.runOnce();
    await settle(p);
    expect(stateOf(p, view.launchId)?.value).toBe('destroyed');
    expect(await p.ledger.holds(clock.now())).toEqual([]);
  });

  it('a machine the sweep finds but cannot destroy keeps its slot, and its own actor destroys it later', async () => {
    const { clock, fly } = world();
    const p = await boot(new MemoryEventStore(), fly, clock);
    await settle(p);
    // The create makes a machine but its answer is lost, the lookup fails, and so does the
    // destroy of what the sweep then finds.
    fly
      .failNext('create', { status: 0, commit: true })
      .failNext('list', { status: 503 })
      .failNext('destroy', { status: 503 }, 5);
    const view = await launch(p);
    await settle(p);
    const machineId = fly.live()[0]!.id;
    const s = stateOf(p, view.launchId);
    expect(s?.value).toBe('cleanup');
    expect((s?.context as { machineId?: string }).machineId).toBe(machineId);
    expect(p.system.services.runtime.actor(`vm.${machineId}`)?.snapshot.status).toBe('active');
    expect((await p.ledger.holds(clock.now())).map((h) => h.holder)).toEqual([view.launchId]);
  });
});
