/**
 * The FlyMachines contract: the in-memory fake, the HTTP client against the emulator, and (opt-in)
 * the HTTP client against real Fly all run this same suite, so a fake that passes it can stand in
 * for Fly in runtime tests.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FlyApiError,
  type CreateMachineInput,
  type FlyMachine,
  type FlyMachines,
} from '../../src/ports/flyMachines.js';

export interface FlyHarness {
  readonly fly: FlyMachines;
  /** A valid create input for this target: a machine that runs until it is stopped. */
  input(overrides?: Partial<CreateMachineInput>): CreateMachineInput;
  /** A machine whose process exits on its own with `code` soon after it starts. */
  exitingInput(code: number, overrides?: Partial<CreateMachineInput>): CreateMachineInput;
  /** Seconds a wait that should succeed may take on this target. */
  readonly waitS: number;
  cleanup(): Promise<void>;
}

export function flyMachinesContract(
  name: string,
  make: () => Promise<FlyHarness>,
  opts: { testTimeoutMs?: number } = {},
): void {
  describe(`FlyMachines contract: ${name}`, { timeout: opts.testTimeoutMs ?? 30_000 }, () => {
    let h: FlyHarness;
    let created: string[];
    let run: string;
    let runSeq = 0;

    beforeEach(async () => {
      h = await make();
      created = [];
      run = `c${Date.now().toString(36)}${(runSeq++).toString(36)}${process.pid.toString(36)}`;
    });

    afterEach(async () => {
      // Destroy what this test made, found by id and by its run tag (a create that failed may still exist).
      const tagged = await h.fly
        .list({ metadata: { contract_run: run } })
        .catch(() => [] as FlyMachine[]);
      const ids = new Set([...created, ...tagged.map((m) => m.id)]);
      await Promise.all(
        [...ids].map((id) => h.fly.destroy(id, { force: true }).catch(() => undefined)),
      );
      await h.cleanup();
    });

    const tagged = (
      i: CreateMachineInput,
      extra: Record<string, string> = {},
    ): CreateMachineInput => ({
      ...i,
      metadata: { ...i.metadata, contract_run: run, ...extra },
    });

    async function create(i: CreateMachineInput): Promise<FlyMachine> {
      const m = await h.fly.create(i);
      created.push(m.id);
      return m;
    }

    async function rejection(p: Promise<unknown>): Promise<FlyApiError> {
      const err: unknown = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FlyApiError);
      return err as FlyApiError;
    }

    it('creates a machine in the requested region with its metadata and a version id', async () => {
      const input = tagged(h.input(), { launch_id: `L${run}` });
      const m = await create(input);
      expect(m.id).toMatch(/^[0-9a-z]+$/);
      expect(m.region).toBe(input.region);
      expect(m.metadata).toMatchObject({ launch_id: `L${run}`, contract_run: run });
      expect(m.instanceId.length).toBeGreaterThan(0);
      expect(['created', 'starting', 'started']).toContain(m.state);
      expect(Number.isNaN(Date.parse(m.createdAt))).toBe(false);
    });

    it('gets a machine by id; an unknown id is a 404 FlyApiError', async () => {
      const m = await create(tagged(h.input()));
      const got = await h.fly.get(m.id);
      expect(got.id).toBe(m.id);
      expect(got.instanceId).toBe(m.instanceId);
      expect(got.metadata.contract_run).toBe(run);
      const err = await rejection(h.fly.get('0de1e7ed0000ff'));
      expect(err.status).toBe(404);
      expect(err.retryable).toBe(false);
    });

    it('waits until started and then reports started', async () => {
      const m = await create(tagged(h.input()));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      expect((await h.fly.get(m.id)).state).toBe('started');
    });

    it('lists by exact metadata', async () => {
      const a = await create(tagged(h.input(), { pick: 'a' }));
      const b = await create(tagged(h.input(), { pick: 'b' }));
      const onlyA = await h.fly.list({ metadata: { contract_run: run, pick: 'a' } });
      expect(onlyA.map((m) => m.id)).toEqual([a.id]);
      const both = await h.fly.list({ metadata: { contract_run: run } });
      expect(both.map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
      expect(await h.fly.list({ metadata: { contract_run: `${run}-nobody` } })).toEqual([]);
    });

    it('resolves a wait that times out as false', async () => {
      const m = await create(tagged(h.input()));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      expect(await h.fly.wait(m.id, 'destroyed', { timeoutS: 1 })).toBe(false);
    });

    it('stops a machine; without auto_destroy it stays stopped (wait for stopped finds the version itself)', async () => {
      const m = await create(tagged(h.input({ autoDestroy: false })));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      await h.fly.stop(m.id, { signal: 'SIGTERM', timeoutS: 5 });
      expect(await h.fly.wait(m.id, 'stopped', { timeoutS: h.waitS })).toBe(true);
      expect((await h.fly.get(m.id)).state).toBe('stopped');
    });

    it('stops an auto_destroy machine into destroyed', async () => {
      const m = await create(tagged(h.input({ autoDestroy: true })));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      await h.fly.stop(m.id);
      expect(
        await h.fly.wait(m.id, 'stopped', { timeoutS: h.waitS, instanceId: m.instanceId }),
      ).toBe(true);
      expect(await h.fly.wait(m.id, 'destroyed', { timeoutS: h.waitS })).toBe(true);
    });

    it('destroys a machine whose process exits when auto_destroy is set; list hides it unless include_deleted', async () => {
      const m = await create(tagged(h.exitingInput(0, { autoDestroy: true })));
      expect(await h.fly.wait(m.id, 'destroyed', { timeoutS: h.waitS })).toBe(true);
      const visible = await h.fly.list({ metadata: { contract_run: run } });
      expect(visible.map((x) => x.id)).not.toContain(m.id);
      const all = await h.fly.list({ metadata: { contract_run: run }, includeDeleted: true });
      expect(all.find((x) => x.id === m.id)?.state).toBe('destroyed');
    });

    it('creates with skipLaunch: the machine stays created until start, and a stopped one starts again as the same version', async () => {
      const m = await create(tagged(h.input({ skipLaunch: true, autoDestroy: false })));
      expect(m.state).toBe('created');
      expect(await h.fly.wait(m.id, 'started', { timeoutS: 1 })).toBe(false);
      expect((await h.fly.get(m.id)).state).toBe('created');
      await h.fly.start(m.id);
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      await h.fly.stop(m.id);
      expect(await h.fly.wait(m.id, 'stopped', { timeoutS: h.waitS })).toBe(true);
      await h.fly.start(m.id);
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      const again = await h.fly.get(m.id);
      expect([again.state, again.instanceId]).toEqual(['started', m.instanceId]);
      const err = await rejection(h.fly.start('0de1e7ed0000ff'));
      expect([err.status, err.retryable]).toEqual([404, false]);
    });

    it('reads, sets and deletes metadata keys; get and list filters see the change at once', async () => {
      const m = await create(tagged(h.input({ skipLaunch: true }), { pick: 'x' }));
      expect(await h.fly.getMetadata(m.id)).toMatchObject({ contract_run: run, pick: 'x' });
      await h.fly.setMetadata(m.id, 'claimed_by', `L${run}`);
      expect((await h.fly.getMetadata(m.id)).claimed_by).toBe(`L${run}`);
      expect((await h.fly.get(m.id)).metadata).toMatchObject({ claimed_by: `L${run}`, pick: 'x' });
      const claimed = await h.fly.list({ metadata: { contract_run: run, claimed_by: `L${run}` } });
      expect(claimed.map((x) => x.id)).toEqual([m.id]);
      await h.fly.deleteMetadata(m.id, 'claimed_by');
      expect(await h.fly.getMetadata(m.id)).not.toHaveProperty('claimed_by');
      expect(await h.fly.list({ metadata: { contract_run: run, claimed_by: `L${run}` } })).toEqual(
        [],
      );
      await expect(h.fly.deleteMetadata(m.id, 'never_set')).resolves.toBeUndefined();
      const err = await rejection(h.fly.getMetadata('0de1e7ed0000ff'));
      expect(err.status).toBe(404);
    });

    it('updates a running machine to a new version that runs again; a stale currentVersion is refused', async () => {
      const m = await create(tagged(h.input({ autoDestroy: false })));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      const next = tagged(h.input({ autoDestroy: false }), { generation: '2' });
      const u = await h.fly.update(m.id, next, { currentVersion: m.instanceId });
      expect(u.id).toBe(m.id);
      expect(u.instanceId).not.toBe(m.instanceId);
      expect(u.metadata.generation).toBe('2');
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      const got = await h.fly.get(m.id);
      expect([got.state, got.instanceId]).toEqual(['started', u.instanceId]);
      const stale = await rejection(h.fly.update(m.id, next, { currentVersion: m.instanceId }));
      expect(stale.status).toBeGreaterThanOrEqual(400);
      expect(stale.status).toBeLessThan(500);
      expect(stale.retryable).toBe(false);
    });

    it('force-destroys a running machine; destroying it again, or an unknown id, is not an error', async () => {
      const m = await create(tagged(h.input()));
      expect(await h.fly.wait(m.id, 'started', { timeoutS: h.waitS })).toBe(true);
      await h.fly.destroy(m.id, { force: true });
      expect(await h.fly.wait(m.id, 'destroyed', { timeoutS: h.waitS })).toBe(true);
      await expect(h.fly.destroy(m.id)).resolves.toBeUndefined();
      await expect(h.fly.destroy('0de1e7ed0000ff')).resolves.toBeUndefined();
      // A destroyed machine either still answers, as destroyed, or is gone.
      const after = await h.fly.get(m.id).then(
        (x) => x.state,
        (e: unknown) => (e instanceof FlyApiError ? e.status : e),
      );
      expect(['destroyed', 404]).toContain(after);
    });
  });
}
