/**
 * The chaos run's settings, the emulator's fault mixes, the seeded schedule (kills, client IPs,
 * targets) and the command line that replays a run. Pure: the same options give the same schedule.
 */
import type { FaultConfig } from '../flylocal/faults.js';
import { mulberry32 } from '../flylocal/prng.js';

export interface ChaosOptions {
  readonly seed: number;
  readonly mode: 'file' | 'nats';
  /** One landing instance per region (file mode: exactly one). */
  readonly regions: readonly string[];
  readonly rounds: number;
  readonly launchesPerRound: number;
  /** `default` (the issue's mix), `none`, or a FaultConfig as JSON. */
  readonly faults: string;
  readonly cap: number;
  readonly readyTimeoutMs: number;
  readonly ttlMs: number;
  readonly reconcileIntervalMs: number;
  /**
   * WM_SNAPSHOT_INTERVAL of the landing instances (default 1 s, so most restarts boot from a
   * snapshot and the tail: the snapshot path is under the same kills as the full read).
   */
  readonly snapshotIntervalMs?: number;
  /** A round lasts at least this long (launches, kills, restarts, checks, then the rest of it). */
  readonly roundMs: number;
  /** Spread of the launches inside a round: each is sent at a seeded 0..launchSpreadMs. */
  readonly launchSpreadMs: number;
  /** NATS mode: the share of rounds in which the broker is killed (1 = every round). */
  readonly natsKillRate: number;
  /** Warm pool: machines kept stopped in each landing region (WM_POOL; 0: no pool). */
  readonly pool?: number;
  readonly keep: boolean;
  /** Where the run dir is made (default the OS temp dir). */
  readonly baseDir?: string;
}

export const DEFAULTS = {
  mode: 'file',
  regions: ['ams'],
  natsRegions: ['ams', 'ord', 'syd'],
  rounds: 10,
  launchesPerRound: 8,
  faults: 'default',
  cap: 8,
  readyTimeoutMs: 15_000,
  ttlMs: 20_000,
  reconcileIntervalMs: 5_000,
  snapshotIntervalMs: 1_000,
  roundMs: 4_000,
  launchSpreadMs: 1_500,
  natsKillRate: 1,
  pool: 0,
} as const;

/** The mix the issue names: what each Machines API action suffers, with Fly's rate limits on. */
export function defaultFaultMix(seed: number): FaultConfig {
  return {
    seed,
    actions: {
      create: {
        p5xx: 0.15,
        status5xx: 500,
        pDropAfterCommit: 0.15,
        pHang: 0.05,
        hangMs: 4_000,
        p429: 0.05,
      },
      wait: { p5xx: 0.15, status5xx: 502 },
      get: { p5xx: 0.15, status5xx: 503 },
      list: { p5xx: 0.3, status5xx: 504 },
      destroy: { p5xx: 0.2, status5xx: 500, pDropAfterCommit: 0.15 },
      stop: { p5xx: 0.2, status5xx: 502 },
    },
    enforceRateLimits: true,
  };
}

/** The emulator's fault configuration for a `--faults` value. Rate limits stay on with `none`. */
export function faultConfig(faults: string, seed: number): FaultConfig {
  if (faults === 'default') return defaultFaultMix(seed);
  if (faults === 'none') return { seed, enforceRateLimits: true };
  const parsed = JSON.parse(faults) as FaultConfig;
  return { seed, enforceRateLimits: true, ...parsed };
}

export interface LaunchPlan {
  /** Index of the landing instance it is sent to. */
  readonly instance: number;
  readonly clientIp: string;
  /** When it is sent, ms after the round starts. */
  readonly atMs: number;
}

export interface RoundPlan {
  readonly round: number;
  readonly launches: readonly LaunchPlan[];
  /** The landing instance SIGKILLed this round, and when (0.2–2 s in). */
  readonly kill: { readonly instance: number; readonly atMs: number };
  /** NATS mode: the broker's kill -9, when, and how long it stays down before the restart. */
  readonly natsKill: { readonly atMs: number; readonly downMs: number } | undefined;
}

/**
 * The whole schedule from the seed, drawn up front in a fixed order, so it does not depend on how
 * long anything took. Client IPs are distinct across the run (10.x.y.z from a counter, shuffled by
 * the seed's offset).
 */
export function schedule(o: ChaosOptions): RoundPlan[] {
  const rng = mulberry32(o.seed);
  const instances = o.regions.length;
  const ipBase = rng.int(0, 0xffff) << 8;
  let ipCounter = 0;
  const rounds: RoundPlan[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const launches: LaunchPlan[] = [];
    for (let i = 0; i < o.launchesPerRound; i++) {
      const n = ipBase + ipCounter++;
      launches.push({
        instance: rng.int(0, instances - 1),
        clientIp: `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`,
        atMs: rng.int(0, o.launchSpreadMs),
      });
    }
    const kill = { instance: rng.int(0, instances - 1), atMs: rng.int(200, 2000) };
    const natsRoll = rng.next();
    const natsAt = rng.int(200, 3000);
    const natsDown = rng.int(300, 3000);
    rounds.push({
      round: r + 1,
      launches,
      kill,
      natsKill:
        o.mode === 'nats' && natsRoll < o.natsKillRate
          ? { atMs: natsAt, downMs: natsDown }
          : undefined,
    });
  }
  return rounds;
}

/** The command that replays this run: every setting that differs from the defaults, and the seed. */
export function replayCommand(o: ChaosOptions): string {
  const args = [`--seed ${o.seed}`, `--mode ${o.mode}`];
  const defRegions = o.mode === 'nats' ? DEFAULTS.natsRegions : DEFAULTS.regions;
  if (o.regions.join(',') !== defRegions.join(',')) args.push(`--regions ${o.regions.join(',')}`);
  args.push(`--rounds ${o.rounds}`, `--launches-per-round ${o.launchesPerRound}`);
  args.push(
    `--faults ${o.faults === 'default' || o.faults === 'none' ? o.faults : `'${o.faults}'`}`,
  );
  const opt = (flag: string, v: number, d: number): void => {
    if (v !== d) args.push(`--${flag} ${v}`);
  };
  opt('cap', o.cap, DEFAULTS.cap);
  opt('ready-ms', o.readyTimeoutMs, DEFAULTS.readyTimeoutMs);
  opt('ttl-ms', o.ttlMs, DEFAULTS.ttlMs);
  opt('reconcile-ms', o.reconcileIntervalMs, DEFAULTS.reconcileIntervalMs);
  opt(
    'snapshot-ms',
    o.snapshotIntervalMs ?? DEFAULTS.snapshotIntervalMs,
    DEFAULTS.snapshotIntervalMs,
  );
  opt('round-ms', o.roundMs, DEFAULTS.roundMs);
  opt('launch-spread-ms', o.launchSpreadMs, DEFAULTS.launchSpreadMs);
  if (o.mode === 'nats') opt('nats-kill-rate', o.natsKillRate, DEFAULTS.natsKillRate);
  opt('pool', o.pool ?? DEFAULTS.pool, DEFAULTS.pool);
  return `npm run chaos -- ${args.join(' ')}`;
}
