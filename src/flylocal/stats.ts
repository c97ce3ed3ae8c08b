/**
 * What the emulator saw over HTTP (for tests and `GET /__flylocal/stats`) and the Prometheus
 * metrics read from it and from the fault and machine counts when scraped.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { FlyLocalEmulator } from './emulator.js';
import type { EmulatedAction } from './faults.js';

export class HttpStats {
  readonly requests: Partial<Record<EmulatedAction, number>> = {};
  /** "<action> <status>" → count. */
  readonly responses: Record<string, number> = {};
  readonly rateLimited: Partial<Record<EmulatedAction, number>> = {};
  /** Requests answered by dropping the connection (hang, dropAfterCommit). */
  readonly dropped: Partial<Record<EmulatedAction, number>> = {};
  /** Arrival times (epoch ms) per action, the most recent 1000. */
  readonly arrivals: Partial<Record<EmulatedAction, number[]>> = {};

  arrived(action: EmulatedAction, at: number): void {
    this.requests[action] = (this.requests[action] ?? 0) + 1;
    const list = (this.arrivals[action] ??= []);
    list.push(at);
    if (list.length > 1000) list.splice(0, list.length - 1000);
  }

  toJSON(): Record<string, unknown> {
    return {
      requests: this.requests,
      responses: this.responses,
      rateLimited: this.rateLimited,
      dropped: this.dropped,
    };
  }
}

type Labels = Record<string, string>;

interface MetricSource {
  readonly kind: 'counter' | 'gauge';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** The series now: label values and their number. */
  read(): Iterable<[Labels, number]>;
}

/** Series from counts kept under `<first><sep><second>` keys, e.g. "create 200". */
function splitKeys(
  counts: Iterable<[string, number]>,
  sep: string,
  [first, second]: readonly [string, string],
): [Labels, number][] {
  return [...counts].map(([key, n]) => {
    const i = key.indexOf(sep);
    return [{ [first]: key.slice(0, i), [second]: key.slice(i + sep.length) }, n];
  });
}

function* machinesByState(emulator: FlyLocalEmulator): Iterable<[Labels, number]> {
  const n = new Map<string, number>();
  for (const m of emulator.ledger()) n.set(m.state, (n.get(m.state) ?? 0) + 1);
  for (const [state, v] of n) yield [{ state }, v];
}

function sources(emulator: FlyLocalEmulator, stats: HttpStats): MetricSource[] {
  return [
    {
      kind: 'counter',
      name: 'flylocal_api_requests_total',
      help: 'Machines API calls the emulator answered, by action and status.',
      labelNames: ['action', 'status'],
      read: () => splitKeys(Object.entries(stats.responses), ' ', ['action', 'status']),
    },
    {
      kind: 'counter',
      name: 'flylocal_rate_limited_total',
      help: 'Calls refused with 429 by the emulated rate limits, by action.',
      labelNames: ['action'],
      read: () => Object.entries(stats.rateLimited).map(([action, n]) => [{ action }, n ?? 0]),
    },
    {
      kind: 'counter',
      name: 'flylocal_faults_injected_total',
      help: 'Faults injected into API calls, by action and fault.',
      labelNames: ['action', 'fault'],
      read: () => splitKeys(emulator.faults.injected, ':', ['action', 'fault']),
    },
    {
      kind: 'gauge',
      name: 'flylocal_machines',
      help: 'Machines the emulator knows, by state (destroyed ones included).',
      labelNames: ['state'],
      read: () => machinesByState(emulator),
    },
  ];
}

/** The emulator's metrics, read from its stats when scraped: one registry per app. */
export function emulatorMetrics(emulator: FlyLocalEmulator, stats: HttpStats): Registry {
  const registry = new Registry();
  for (const s of sources(emulator, stats)) {
    const config = { name: s.name, help: s.help, labelNames: s.labelNames, registers: [registry] };
    if (s.kind === 'counter') {
      new Counter({
        ...config,
        collect() {
          this.reset();
          for (const [labels, n] of s.read()) this.inc(labels, n);
        },
      });
    } else {
      new Gauge({
        ...config,
        collect() {
          this.reset();
          for (const [labels, n] of s.read()) this.set(labels, n);
        },
      });
    }
  }
  return registry;
}
