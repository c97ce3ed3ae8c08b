/**
 * The chaos harness's pure checks: each one is fed the violation it exists to find (and a clean
 * case it must pass), so a check that silently stopped detecting would fail here.
 */
import { describe, expect, it } from 'vitest';
import {
  checkCap,
  checkExits,
  checkFinal,
  checkHttp,
  checkKnown,
  checkMachinesLeft,
  checkOneMachinePerLaunch,
  checkProcessesLeft,
  checkStore,
  runningOf,
  scanLog,
  type LedgerMachine,
  type LaunchOutcome,
  type StoredFact,
} from '../../../src/chaos/checks.js';
import { replayCommand, schedule, type ChaosOptions } from '../../../src/chaos/config.js';

const L1 = '01J0000000000000000000000A';
const L2 = '01J0000000000000000000000B';

function machine(over: Partial<LedgerMachine> & { id: string }): LedgerMachine {
  return { name: `wm-${L1.toLowerCase()}`, state: 'started', metadata: {}, states: [], ...over };
}

describe('cap', () => {
  const sample = (at: number, n: number) => ({
    at,
    running: Array.from({ length: n }, (_, i) => ({
      id: `m${i}`,
      name: `wm-x${i}`,
      state: 'started',
    })),
  });

  it('passes at the cap and finds one excursion above it, with its worst sample', () => {
    expect(checkCap([sample(1, 8), sample(2, 8)], 8)).toEqual([]);
    const v = checkCap([sample(1, 8), sample(2, 9), sample(3, 10), sample(4, 8), sample(5, 9)], 8);
    expect(v).toHaveLength(2);
    expect(v[0]!.check).toBe('cap');
    expect((v[0]!.evidence as { worst: { running: unknown[] } }).worst.running).toHaveLength(10);
    expect((v[0]!.evidence as { samples: number }).samples).toBe(2);
  });

  it('counts starting, started and stopping machines as running a VM, not created or destroyed', () => {
    const ledger = ['created', 'starting', 'started', 'stopping', 'stopped', 'destroyed'].map(
      (state, i) => machine({ id: `m${i}`, state }),
    );
    expect(runningOf(ledger).map((r) => r.state)).toEqual(['starting', 'started', 'stopping']);
  });
});

describe('one machine per launch', () => {
  it('finds two machines for one launch by metadata, and by name when metadata is missing', () => {
    expect(
      checkOneMachinePerLaunch([
        machine({ id: 'a', metadata: { launch_id: L1 } }),
        machine({ id: 'b', name: `wm-${L2.toLowerCase()}`, metadata: { launch_id: L2 } }),
      ]),
    ).toEqual([]);
    const v = checkOneMachinePerLaunch([
      machine({ id: 'a', metadata: { launch_id: L1 } }),
      machine({ id: 'b', name: `wm-${L1.toLowerCase()}`, state: 'destroyed', metadata: {} }),
    ]);
    expect(v).toHaveLength(1);
    expect(v[0]!.launchIds).toEqual([L1]);
  });
});

describe('left behind', () => {
  it('finds a machine not destroyed after the TTLs', () => {
    expect(checkMachinesLeft([machine({ id: 'a', state: 'destroyed' })])).toEqual([]);
    const v = checkMachinesLeft([
      machine({ id: 'a', state: 'stopped', metadata: { launch_id: L1 } }),
    ]);
    expect(v).toHaveLength(1);
    expect(v[0]!.launchIds).toEqual([L1]);
  });

  it('leaves a pooled machine waiting stopped alone, but not one a launch claimed or one found running', () => {
    const pooled = (over: Partial<LedgerMachine> & { id: string }) =>
      machine({
        name: 'wm-pool-ams-01j0000000000000000000000z',
        metadata: { pool: 'ams' },
        ...over,
      });
    expect(checkMachinesLeft([pooled({ id: 'p1', state: 'stopped' })])).toEqual([]);
    expect(checkMachinesLeft([pooled({ id: 'p2', state: 'created' })])).toEqual([]);
    // Claimed: it is a launch's machine now, and must be gone after the TTLs.
    const claimed = checkMachinesLeft([
      pooled({ id: 'p3', state: 'stopped', metadata: { pool: 'ams', launch_id: L2 } }),
    ]);
    expect(claimed.map((v) => v.launchIds)).toEqual([[L2]]);
    expect(checkMachinesLeft([pooled({ id: 'p4', state: 'started' })])).toHaveLength(1);
    // A pool's name is not a launch's: unclaimed pooled machines never look like two launches' machines.
    expect(checkOneMachinePerLaunch([pooled({ id: 'p5' }), pooled({ id: 'p6' })])).toEqual([]);
  });

  it('turns every leftover process into a violation', () => {
    expect(checkProcessesLeft([], 'at the end')).toEqual([]);
    expect(
      checkProcessesLeft([{ pid: 42, what: 'VM process', machineId: 'm1' }], 'x')[0]!.message,
    ).toMatch(/pid 42.*m1/);
  });
});

describe('launches', () => {
  it('a launch unknown (404) or unanswered after a restart is a violation; 200 is not', () => {
    const v = checkKnown([
      { launchId: L1, instance: 'where-ams', restart: 1, status: 200 },
      { launchId: L2, instance: 'where-ams', restart: 1, status: 404 },
      { launchId: L1, instance: 'where-ams', restart: 2, status: 'error', error: 'ECONNREFUSED' },
    ]);
    expect(v.map((x) => x.launchIds)).toEqual([[L2], [L1]]);
    expect(v[0]!.message).toMatch(/unknown/);
  });

  it('a launch not final, or final after its deadline, is a violation', () => {
    const base: LaunchOutcome = {
      launchId: L1,
      requestedAt: 0,
      deadlineAt: 1000,
      status: 'done',
      state: 'destroyed',
      finalAt: 900,
    };
    expect(checkFinal([base])).toEqual([]);
    expect(checkFinal([{ ...base, finalAt: 1001 }])[0]!.message).toMatch(/1 ms after/);
    expect(
      checkFinal([{ ...base, status: 'active', state: 'cleanup', finalAt: undefined }])[0]!.message,
    ).toMatch(/not final/);
  });
});

describe('http', () => {
  const a = {
    at: 0,
    instance: 'where-ams',
    method: 'POST',
    path: '/launches',
    instanceKilled: false,
  };
  it('allows 503 CAPACITY, refuses any other 5xx, and a missing answer from a live instance', () => {
    expect(
      checkHttp([
        { ...a, status: 202 },
        { ...a, status: 503, code: 'CAPACITY' },
      ]),
    ).toEqual([]);
    expect(checkHttp([{ ...a, status: 500, code: 'INTERNAL' }])).toHaveLength(1);
    expect(checkHttp([{ ...a, status: 503, code: 'NOT_READY' }])).toHaveLength(1);
    expect(checkHttp([{ ...a, error: 'socket hang up' }])).toHaveLength(1);
    expect(checkHttp([{ ...a, error: 'socket hang up', instanceKilled: true }])).toEqual([]);
  });
});

describe('logs', () => {
  const line = (o: object) => JSON.stringify(o);
  it('finds error and fatal lines, but not the CAPACITY refusal or warnings', () => {
    const text = [
      line({ level: 30, msg: 'listening' }),
      line({ level: 40, msg: 'fly call will retry' }),
      line({ level: 50, msg: 'Every slot is taken', err: { code: 'CAPACITY', statusCode: 503 } }),
      line({ level: 50, msg: 'unhandled error', err: { message: 'boom' } }),
      line({ level: 60, msg: 'could not start' }),
    ].join('\n');
    const v = scanLog('where-ams.out.log', text);
    expect(v.map((x) => (x.evidence as { line: number }).line)).toEqual([4, 5]);
  });

  it('judges a VM line inside the emulator log by the VM record, and finds crash markers anywhere', () => {
    const vmError = line({
      level: 30,
      machine: 'abc',
      stream: 'stdout',
      msg: line({ level: 50, msg: 'x' }),
    });
    const vmInfo = line({
      level: 30,
      machine: 'abc',
      stream: 'stdout',
      msg: line({ level: 30, msg: 'up' }),
    });
    expect(scanLog('flylocal.out.log', vmInfo)).toEqual([]);
    expect(scanLog('flylocal.out.log', vmError)).toHaveLength(1);
    expect(
      scanLog('where-ams.err.log', 'node:internal/process: UnhandledPromiseRejection: x'),
    ).toHaveLength(1);
    expect(scanLog('nats-server.err.log', '[1] 2024/01/01 [FTL] cannot start')).toHaveLength(1);
    expect(scanLog('nats-server.err.log', '[1] 2024/01/01 [INF] Server is ready')).toEqual([]);
  });
});

describe('exits', () => {
  it('an exit the harness did not cause is a violation', () => {
    expect(
      checkExits([
        { name: 'where-ams', incarnation: 1, code: null, signal: 'SIGKILL', expected: true },
      ]),
    ).toEqual([]);
    expect(
      checkExits([{ name: 'where-ams', incarnation: 2, code: 1, signal: null, expected: false }]),
    ).toHaveLength(1);
  });
});

describe('store', () => {
  const e = (id: string, stream: string, version: number, position: number): StoredFact => ({
    id,
    stream,
    version,
    position,
  });
  it('passes contiguous streams interleaved in the store', () => {
    expect(
      checkStore([
        e('a', 'launch.1', 1, 1),
        e('b', 'vm.1', 1, 2),
        e('c', 'launch.1', 2, 3),
        e('d', 'vm.1', 2, 4),
      ]),
    ).toEqual([]);
  });
  it('finds a gap, a repeated version, a repeated event id and a position going back', () => {
    expect(checkStore([e('a', 'launch.1', 1, 1), e('b', 'launch.1', 3, 2)])[0]!.message).toMatch(
      /expected 2/,
    );
    expect(checkStore([e('a', 'launch.1', 1, 1), e('b', 'launch.1', 1, 2)])[0]!.message).toMatch(
      /expected 2/,
    );
    const dup = checkStore([e('a', 'launch.1', 1, 1), e('a', 'launch.1', 2, 2)]);
    expect(dup.map((v) => v.message)).toEqual([expect.stringMatching(/stored twice/)]);
    expect(checkStore([e('a', 'launch.1', 1, 2), e('b', 'vm.1', 1, 1)])[0]!.message).toMatch(
      /does not follow/,
    );
  });
});

describe('schedule', () => {
  const o: ChaosOptions = {
    seed: 5,
    mode: 'nats',
    regions: ['ams', 'ord', 'syd'],
    rounds: 4,
    launchesPerRound: 6,
    faults: 'default',
    cap: 8,
    readyTimeoutMs: 15_000,
    ttlMs: 20_000,
    reconcileIntervalMs: 5_000,
    roundMs: 4_000,
    launchSpreadMs: 1_500,
    natsKillRate: 1,
    keep: false,
  };
  it('is the same for the same seed, different for another, with kills 0.2-2 s in and distinct IPs', () => {
    expect(schedule(o)).toEqual(schedule(o));
    expect(schedule({ ...o, seed: 6 })).not.toEqual(schedule(o));
    const s = schedule(o);
    for (const r of s) {
      expect(r.kill.atMs).toBeGreaterThanOrEqual(200);
      expect(r.kill.atMs).toBeLessThanOrEqual(2000);
      expect(r.natsKill).toBeDefined();
    }
    const ips = s.flatMap((r) => r.launches.map((l) => l.clientIp));
    expect(new Set(ips).size).toBe(ips.length);
    expect(
      schedule({ ...o, mode: 'file', regions: ['ams'] }).every((r) => r.natsKill === undefined),
    ).toBe(true);
  });
  it('replays with the seed and every non-default setting', () => {
    const cmd = replayCommand({ ...o, cap: 4 });
    expect(cmd).toMatch(/--seed 5 --mode nats/);
    expect(cmd).toMatch(/--cap 4/);
    expect(cmd).not.toMatch(/--regions/);
  });
});
