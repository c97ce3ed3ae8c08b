/**
 * G12 driver: a landing instance whose clock is off by `skewMs` from the world's (Fly's and the
 * VMs'), both on one manual clock so hours pass in milliseconds. Records when Fly destroyed each
 * machine in world time, every destroy call, and how callbacks signed by a VM at given offsets
 * are answered.
 */
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import type { Clock, Timers } from '../../src/ports/clock.js';
import { deriveLaunchKey, SIGNATURE_HEADER, signBody } from '../../src/shared/callbackAuth.js';
import { silentLogger } from '../../src/shared/log.js';
import { createWhere, type WhereSystem } from '../../src/where/system.js';
import { testConfig } from './whereRig.js';

/** A clock `skewMs` ahead of (or, negative, behind) another, with timers in its own time. */
export class SkewedClock implements Clock, Timers {
  constructor(
    private readonly world: ManualClock,
    readonly skewMs: number,
  ) {}
  now(): number {
    return this.world.now() + this.skewMs;
  }
  set(key: string, at: number, fire: () => void): void {
    // Due when *this* clock reads `at`, i.e. when the world reads at - skew.
    this.world.set(key, at - this.skewMs, fire);
  }
  clear(key: string): void {
    this.world.clear(key);
  }
  clearAll(): void {
    this.world.clearAll();
  }
  pending(): ReadonlyMap<string, number> {
    return new Map([...this.world.pending()].map(([k, at]) => [k, at + this.skewMs]));
  }
}

export interface SkewRun {
  skewMs: number;
  ttlMs: number;
  /** Per machine: world ms from Fly's createdAt to its destroy. */
  lifetimes: number[];
  /** Destroy calls per machine that Fly carried out (more than 1 is a double destroy). */
  destroysPerMachine: number[];
  destroyCalls: number;
  machines: number;
}

const SECRET = 's'.repeat(48);

async function skewedWhere(skewMs: number, env: Record<string, string> = {}) {
  const world = new ManualClock(Date.now());
  const clock = new SkewedClock(world, skewMs);
  // Fly and the VMs live in world time; machines start at once.
  const fly = new FakeFlyMachines({ clock: world, timers: new ManualClock(0) });
  const cfg = testConfig({
    WM_AUTOSPAWN: 'off',
    WM_CALLBACK_SECRET: SECRET,
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '10000',
    WM_REQUESTS_PER_MINUTE: '1000000',
    WM_MAX_MACHINES: '100',
    ...env,
  });
  const system: WhereSystem = await createWhere(
    cfg,
    {
      store: new MemoryEventStore(),
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: clock,
      ids: new UlidIds(),
      log: silentLogger(),
    },
    { beatMs: 60_000 },
  );
  await system.start(false);
  const destroyedAt = new Map<string, number>();
  const realDestroy = fly.destroy.bind(fly);
  fly.destroy = async (id, opts) => {
    await realDestroy(id, opts);
    if (!destroyedAt.has(id)) destroyedAt.set(id, world.now());
  };
  /** A VM's signed call home, signed at world time + `offsetMs`. */
  const callback = (body: Record<string, unknown>, offsetMs = 0) => {
    const raw = JSON.stringify(body);
    const key = deriveLaunchKey(SECRET, String(body.launchId));
    return system.privateApp.inject({
      method: 'POST',
      url: '/api/machine_status',
      headers: {
        'content-type': 'application/json',
        [SIGNATURE_HEADER]: signBody(key, raw, world.now() + offsetMs),
      },
      payload: raw,
    });
  };
  const launchOne = async () => {
    const v = await system.services.launches.start({ region: cfg.region, source: 'button' });
    await system.services.runtime.settled();
    const m = fly.live().find((x) => x.metadata.launch_id === v.launchId);
    if (!m) throw new Error('no machine for the launch');
    return { launchId: v.launchId, machineId: m.id };
  };
  return { world, clock, fly, cfg, system, destroyedAt, callback, launchOne };
}

/**
 * Launch `machines` VMs that report ready and then go silent (the worst case: nothing but our own
 * deadline ends them), and move world time in 1 s steps until all are destroyed.
 */
export async function runSkew(skewMs: number, machines: number): Promise<SkewRun> {
  const r = await skewedWhere(skewMs);
  try {
    const made: { launchId: string; machineId: string }[] = [];
    for (let i = 0; i < machines; i++) {
      const l = await r.launchOne();
      const res = await r.callback({
        machineId: l.machineId,
        launchId: l.launchId,
        region: r.cfg.region,
        status: 'listening',
        at: new Date(r.world.now()).toISOString(),
      });
      if (res.statusCode !== 200)
        throw new Error(`ready callback answered ${res.statusCode}: ${res.body}`);
      made.push(l);
      r.world.advance(1000);
      await r.system.services.runtime.settled();
    }
    const ttlMs = r.cfg.ttl.buttonMs;
    const horizon = r.world.now() + ttlMs + 10 * 60_000;
    while (r.destroyedAt.size < machines && r.world.now() < horizon) {
      r.world.advance(1000);
      await r.system.services.runtime.settled();
    }
    const created = new Map(r.fly.ledger().map((m) => [m.id, Date.parse(m.createdAt)]));
    const perMachine = new Map<string, number>();
    for (const c of r.fly.calls)
      if (c.op === 'destroy' && c.machineId && c.failed === undefined)
        perMachine.set(c.machineId, (perMachine.get(c.machineId) ?? 0) + 1);
    return {
      skewMs,
      ttlMs,
      lifetimes: made.map(
        (m) => (r.destroyedAt.get(m.machineId) ?? NaN) - created.get(m.machineId)!,
      ),
      destroysPerMachine: made.map((m) => perMachine.get(m.machineId) ?? 0),
      destroyCalls: r.fly.count('destroy'),
      machines,
    };
  } finally {
    await r.system.stop();
  }
}

/**
 * How callbacks signed at each offset (seconds, VM clock minus ours) are answered: one fresh
 * launch per offset, so a refusal can only come from the timestamp.
 */
export async function callbackWindow(
  offsetsS: number[],
): Promise<Map<number, { status: number; code?: string }>> {
  const r = await skewedWhere(0);
  try {
    const out = new Map<number, { status: number; code?: string }>();
    for (const s of offsetsS) {
      const l = await r.launchOne();
      const res = await r.callback(
        {
          machineId: l.machineId,
          launchId: l.launchId,
          region: r.cfg.region,
          status: 'listening',
          at: new Date(r.world.now()).toISOString(),
        },
        s * 1000,
      );
      const code = res.json<{ code?: string }>().code;
      out.set(s, { status: res.statusCode, ...(code ? { code } : {}) });
    }
    return out;
  } finally {
    await r.system.stop();
  }
}
