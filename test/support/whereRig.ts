/**
 * A landing app for tests: the real system (runtime, services, both listeners on free ports) on
 * in-memory adapters and the Fly fake, so a test drives it over real HTTP.
 */
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import type { EventStore } from '../../src/ports/eventStore.js';
import { signBody, deriveLaunchKey, SIGNATURE_HEADER } from '../../src/shared/callbackAuth.js';
import { silentLogger } from '../../src/shared/log.js';
import { parseEnv } from '../../src/shared/env.js';
import { toConfig, whereEnv, type WhereConfig } from '../../src/where/config.js';
import { createWhere, type WherePorts, type WhereSystem } from '../../src/where/system.js';

export interface WhereRig {
  system: WhereSystem;
  cfg: WhereConfig;
  fly: FakeFlyMachines;
  store: EventStore;
  ledger: MemoryCapacityLedger;
  base: string;
  priv: string;
  /** POST a signed VM callback to the private API. */
  callback(
    body: Record<string, unknown>,
    opts?: { key?: string; at?: number; raw?: string },
  ): Promise<Response>;
  stop(): Promise<void>;
}

/** The configuration of a landing app under test: local mode, free ports, fixed secrets. */
export function testConfig(env: Record<string, string> = {}): WhereConfig {
  return toConfig(
    parseEnv(whereEnv, {
      WM_LOCAL: '1',
      HOST: '127.0.0.1',
      PORT: '0',
      PRIVATE_HOST: '127.0.0.1',
      PRIVATE_PORT: '0',
      WM_INSTANCE_ID: 'test-1',
      FLY_REGION: 'ams',
      WM_CALLBACK_SECRET: 'x'.repeat(40),
      DEBUG_TOKEN: 'debug-token-for-tests',
      WM_PUBLIC_URL: 'http://localhost:8080',
      WM_VM_PUBLIC_URL: 'http://useless-machine.localhost:8080',
      WM_RECONCILE_MIN_GAP_MS: '0',
      ...env,
    }),
  );
}

export async function whereRig(
  env: Record<string, string> = {},
  opts: { fly?: FakeFlyMachines; store?: EventStore; snapshot?: WherePorts['snapshot'] } = {},
): Promise<WhereRig> {
  const cfg = testConfig(env);
  const fly = opts.fly ?? new FakeFlyMachines();
  const store = opts.store ?? new MemoryEventStore();
  const ledger = new MemoryCapacityLedger();
  const clock = systemClock;
  const system = await createWhere(
    cfg,
    {
      store,
      ledger,
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: new SystemTimers(clock),
      ids: new UlidIds(),
      log: silentLogger(),
      ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
    },
    { beatMs: 200 },
  );
  const urls = await system.start();
  const base = urls.publicUrl!;
  const priv = urls.privateUrl!;
  return {
    system,
    cfg,
    fly,
    store,
    ledger,
    base,
    priv,
    async callback(body, o = {}) {
      const raw = o.raw ?? JSON.stringify(body);
      const key = o.key ?? deriveLaunchKey(cfg.callback.secret, String(body.launchId));
      return fetch(`${priv}/api/machine_status`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(key, raw, o.at ?? Date.now()),
        },
        body: raw,
      });
    },
    stop: () => system.stop(),
  };
}

/** The JSON POST a same-origin page makes. */
export function launch(
  rig: WhereRig,
  body: unknown = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${rig.base}/launches`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: rig.base,
      'sec-fetch-site': 'same-origin',
      ...headers,
    },
    body: JSON.stringify(body),
  });
}
