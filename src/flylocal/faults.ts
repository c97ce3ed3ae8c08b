/**
 * Seeded fault injection for the emulator: per-action latency, 429 with Retry-After, 5xx, hangs
 * that drop the connection, drops after the work was done, and malformed bodies. Set in the
 * constructor or at run time through `POST /__flylocal/faults`; the same seed and request order
 * give the same faults.
 */
import { z } from 'zod';
import { mulberry32, type Prng } from './prng.js';

export const EMULATED_ACTIONS = [
  'create',
  'get',
  'list',
  'wait',
  'stop',
  'destroy',
  'start',
  'restart',
  'suspend',
  'update',
  'signal',
  'cordon',
  'events',
  'versions',
  'lease',
  'ps',
  'getMetadata',
  'setMetadata',
  'deleteMetadata',
] as const;
export type EmulatedAction = (typeof EMULATED_ACTIONS)[number];
export const emulatedAction = z.enum(EMULATED_ACTIONS);

/**
 * What can happen to one request:
 * - `429`, `500`…`504`, `hang`: refused before any work (a hang holds the request, then drops the socket);
 * - `dropAfterCommit`: the work is done, then the socket is dropped without an answer (unknown outcome);
 * - `malformed`: the work is done, the answer is a 200 whose body does not parse.
 */
export const FAULT_KINDS = [
  '429',
  '500',
  '502',
  '503',
  '504',
  'hang',
  'dropAfterCommit',
  'malformed',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const probability = z.number().min(0).max(1);

export const latencySchema = z
  .strictObject({ minMs: z.number().int().min(0), maxMs: z.number().int().min(0) })
  .refine((l) => l.minMs <= l.maxMs, 'minMs must not exceed maxMs');
export type Latency = z.infer<typeof latencySchema>;

export const actionFaultsSchema = z.strictObject({
  /** Uniform delay before the answer. */
  latencyMs: latencySchema.optional(),
  /** Faults for the next requests, one each, in order; probabilities apply once it is used up. */
  script: z.array(z.enum(FAULT_KINDS)).optional(),
  p429: probability.optional(),
  /** Retry-After sent with a 429, in seconds (default 1). */
  retryAfterS: z.number().int().min(0).max(3600).optional(),
  p5xx: probability.optional(),
  /** Status of a random 5xx (default 503). */
  status5xx: z.union([z.literal(500), z.literal(502), z.literal(503), z.literal(504)]).optional(),
  pHang: probability.optional(),
  /** How long a hang holds the request before dropping it (default 30 000 ms). */
  hangMs: z.number().int().min(0).max(600_000).optional(),
  pDropAfterCommit: probability.optional(),
  pMalformed: probability.optional(),
});
export type ActionFaults = z.infer<typeof actionFaultsSchema>;

export const faultConfigSchema = z.strictObject({
  /** Reseeds the fault PRNG (default 1). */
  seed: z.number().int().optional(),
  actions: z.partialRecord(emulatedAction, actionFaultsSchema).optional(),
  /** Time a machine spends in `starting` before its process is spawned. */
  startLatencyMs: latencySchema.optional(),
  /** Regions where create answers "insufficient capacity". */
  capacityRegions: z.array(z.string()).optional(),
  /**
   * Answer 429 past Fly's published limits: 1/s with a burst of 3 per action and machine (create
   * and list: per action and app), Get Machine 5/s with a burst of 10.
   */
  enforceRateLimits: z.boolean().optional(),
});
export type FaultConfig = z.infer<typeof faultConfigSchema>;

export interface FaultDecision {
  readonly fault: FaultKind | undefined;
  readonly latencyMs: number;
  readonly retryAfterS: number;
  readonly hangMs: number;
}

export class Faults {
  private config: FaultConfig = {};
  private prng: Prng = mulberry32(1);
  private scripts = new Map<EmulatedAction, FaultKind[]>();
  readonly injected = new Map<string, number>();

  constructor(config: FaultConfig = {}) {
    this.set(config);
  }

  /** Replace the whole configuration (and reseed). */
  set(config: FaultConfig): void {
    this.config = faultConfigSchema.parse(config);
    this.prng = mulberry32(this.config.seed ?? 1);
    this.scripts = new Map(
      Object.entries(this.config.actions ?? {}).map(([a, f]) => [
        a as EmulatedAction,
        [...(f.script ?? [])],
      ]),
    );
  }

  get current(): FaultConfig {
    const actions: Partial<Record<EmulatedAction, ActionFaults>> = {};
    for (const [a, f] of Object.entries(this.config.actions ?? {})) {
      actions[a as EmulatedAction] = {
        ...f,
        script: [...(this.scripts.get(a as EmulatedAction) ?? [])],
      };
    }
    return { ...this.config, actions };
  }

  get enforceRateLimits(): boolean {
    return this.config.enforceRateLimits ?? false;
  }

  hasCapacity(region: string): boolean {
    return !(this.config.capacityRegions ?? []).includes(region);
  }

  /** Decide the fate of one request. Always draws the same number of random values. */
  decide(action: EmulatedAction): FaultDecision {
    const f = this.config.actions?.[action] ?? {};
    const roll = this.prng.next();
    const latencyRoll = this.prng.next();
    const latencyMs = f.latencyMs
      ? f.latencyMs.minMs + Math.floor(latencyRoll * (f.latencyMs.maxMs - f.latencyMs.minMs + 1))
      : 0;
    let fault: FaultKind | undefined = this.scripts.get(action)?.shift();
    if (fault === undefined) {
      const table: [number | undefined, FaultKind][] = [
        [f.p429, '429'],
        [f.p5xx, String(f.status5xx ?? 503) as FaultKind],
        [f.pHang, 'hang'],
        [f.pDropAfterCommit, 'dropAfterCommit'],
        [f.pMalformed, 'malformed'],
      ];
      let acc = 0;
      for (const [p, kind] of table) {
        acc += p ?? 0;
        if (roll < acc) {
          fault = kind;
          break;
        }
      }
    }
    if (fault)
      this.injected.set(`${action}:${fault}`, (this.injected.get(`${action}:${fault}`) ?? 0) + 1);
    return { fault, latencyMs, retryAfterS: f.retryAfterS ?? 1, hangMs: f.hangMs ?? 30_000 };
  }

  /** Time to spend in `starting` for the next launch. */
  startLatencyMs(): number {
    const l = this.config.startLatencyMs;
    const roll = this.prng.next();
    return l ? l.minMs + Math.floor(roll * (l.maxMs - l.minMs + 1)) : 0;
  }
}
