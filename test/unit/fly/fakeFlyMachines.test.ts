/**
 * The fake's scripting API (beyond the contract it shares with the real thing): scripted failures,
 * manual stepping, process exits and restart policy, the ledger, and wait timeouts on a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { FlyApiError, type CreateMachineInput } from '../../../src/ports/flyMachines.js';

const input = (over: Partial<CreateMachineInput> = {}): CreateMachineInput => ({
  region: 'ams',
  image: 'img',
  env: {},
  metadata: { launch_id: 'L1' },
  internalPort: 4040,
  autoDestroy: true,
  restart: { policy: 'no' },
  stop: { signal: 'SIGTERM', timeoutS: 5 },
  ...over,
});

async function rejected(p: Promise<unknown>): Promise<FlyApiError> {
  const e: unknown = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FlyApiError);
  return e as FlyApiError;
}

describe('FakeFlyMachines scripting', () => {
  it('fails the next calls as scripted, then works again', async () => {
    const fly = new FakeFlyMachines()
      .failNext('create', { status: 503 }, 2)
      .failNext('get', { status: 0 });
    const e1 = await rejected(fly.create(input()));
    expect(e1).toMatchObject({ op: 'create', status: 503, retryable: true });
    expect((await rejected(fly.create(input()))).status).toBe(503);
    const m = await fly.create(input());
    expect((await rejected(fly.get(m.id))).status).toBe(0);
    expect((await fly.get(m.id)).id).toBe(m.id);
    expect(fly.ledger()).toHaveLength(1);
    expect(fly.count('create')).toBe(3);
    expect(
      fly.calls.filter((c) => c.failed !== undefined).map((c) => `${c.op}:${c.failed}`),
    ).toEqual(['create:503', 'create:503', 'get:0']);
  });

  it('can fail a create after making the machine (unknown outcome), so the ledger shows the orphan', async () => {
    const fly = new FakeFlyMachines().failNext('create', {
      status: 0,
      commit: true,
      message: 'timeout',
    });
    const e = await rejected(fly.create(input({ metadata: { launch_id: 'L7' } })));
    expect(e).toMatchObject({ status: 0, retryable: true, flyMessage: 'timeout' });
    const found = await fly.list({ metadata: { launch_id: 'L7' } });
    expect(found).toHaveLength(1);
    expect(fly.live().map((m) => m.id)).toEqual([found[0]!.id]);
  });

  it('answers a scripted 408 on wait with false, and a scripted 404 on destroy as already gone', async () => {
    const fly = new FakeFlyMachines({ mode: 'manual' });
    const m = await fly.create(input());
    fly.failNext('wait', { status: 408 }).failNext('destroy', { status: 404 });
    expect(await fly.wait(m.id, 'started')).toBe(false);
    await expect(fly.destroy(m.id)).resolves.toBeUndefined();
    expect((await fly.get(m.id)).state).toBe('created');
  });

  it('in manual mode moves only when told, and wakes waiters when it does', async () => {
    const fly = new FakeFlyMachines({ mode: 'manual' });
    const m = await fly.create(input({ autoDestroy: true }));
    expect((await fly.get(m.id)).state).toBe('created');
    const started = fly.wait(m.id, 'started', { timeoutS: 60 });
    expect(fly.advance(m.id).state).toBe('starting');
    expect(fly.advance(m.id).state).toBe('started');
    expect(await started).toBe(true);
    await fly.stop(m.id);
    expect((await fly.get(m.id)).state).toBe('stopping');
    expect(fly.advance(m.id).state).toBe('destroyed');
    expect(fly.history(m.id)).toEqual([
      'created',
      'starting',
      'started',
      'stopping',
      'stopped',
      'destroying',
      'destroyed',
    ]);
  });

  it('applies the restart policy when a machine exits', async () => {
    const fly = new FakeFlyMachines();
    const crashy = await fly.create(
      input({ restart: { policy: 'on-failure', maxRetries: 2 }, autoDestroy: false }),
    );
    fly.exit(crashy.id, 1);
    fly.exit(crashy.id, 1);
    expect((await fly.get(crashy.id)).state).toBe('started');
    fly.exit(crashy.id, 1);
    expect((await fly.get(crashy.id)).state).toBe('stopped');
    expect(fly.restarts(crashy.id)).toBe(2);

    const clean = await fly.create(input({ restart: { policy: 'on-failure', maxRetries: 2 } }));
    fly.exit(clean.id, 0);
    expect((await fly.get(clean.id)).state).toBe('destroyed');
    expect(fly.restarts(clean.id)).toBe(0);
  });

  it('runs per-machine behaviour chosen at create (a machine that crashes on start)', async () => {
    const fly = new FakeFlyMachines().onCreate((i) =>
      i.metadata.launch_id === 'bad' ? { exitCode: 3 } : undefined,
    );
    const bad = await fly.create(input({ metadata: { launch_id: 'bad' } }));
    const good = await fly.create(input());
    expect(await fly.wait(bad.id, 'destroyed', { timeoutS: 1 })).toBe(true);
    expect((await fly.get(good.id)).state).toBe('started');
  });

  it('expires waits on the injected clock, leaving no timer behind', async () => {
    const clock = new ManualClock();
    const fly = new FakeFlyMachines({ mode: 'manual', clock, timers: clock });
    const m = await fly.create(input());
    const w = fly.wait(m.id, 'started', { timeoutS: 30 });
    expect(clock.pending().size).toBe(1);
    clock.advance(30_000);
    expect(await w).toBe(false);
    expect(clock.pending().size).toBe(0);
  });

  it('refuses a non-forced destroy of a running machine and a taken name', async () => {
    const fly = new FakeFlyMachines();
    const m = await fly.create(input({ name: 'only-one' }));
    expect((await rejected(fly.destroy(m.id, { force: false }))).status).toBe(412);
    expect((await rejected(fly.create(input({ name: 'only-one' })))).status).toBe(409);
    await fly.destroy(m.id, { force: true });
    expect((await fly.create(input({ name: 'only-one' }))).name).toBe('only-one');
  });
});
