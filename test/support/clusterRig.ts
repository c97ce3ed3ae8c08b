/**
 * Several landing-app instances ("regions") in one test process, each with its own NATS
 * connection to one nats-server (JetStream store, KV cap/lease/presence), sharing one Fly fake (one
 * Fly API). Each instance listens on free ports, as in production each machine would.
 */
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { deriveLaunchKey, signBody, SIGNATURE_HEADER } from '../../src/shared/callbackAuth.js';
import { silentLogger } from '../../src/shared/log.js';
import type { WhereConfig } from '../../src/where/config.js';
import { testConfig } from './whereRig.js';
import { createWhere, type WhereSystem } from '../../src/where/system.js';
import { openNatsPorts } from '../../src/where/wiring.js';
import { NatsServer } from './natsServer.js';

export interface Region {
  name: string;
  cfg: WhereConfig;
  system: WhereSystem;
  base: string;
  priv: string;
  stop(): Promise<void>;
}

export interface ClusterRig {
  nats: NatsServer;
  fly: FakeFlyMachines;
  regions: Region[];
  start(region: string): Promise<Region>;
  callback(to: Region, body: Record<string, unknown>): Promise<Response>;
  stop(): Promise<void>;
}

const SECRET = 'c'.repeat(48);

export async function clusterRig(
  regionNames: string[],
  env: Record<string, string> = {},
  opts: { fly?: FakeFlyMachines } = {},
): Promise<ClusterRig> {
  const nats = await NatsServer.start();
  const fly = opts.fly ?? new FakeFlyMachines();
  const regions: Region[] = [];

  async function start(name: string): Promise<Region> {
    const cfg = testConfig({
      WM_INSTANCE_ID: `where-${name}`,
      FLY_REGION: name,
      NATS_URL: nats.url,
      WM_CALLBACK_SECRET: SECRET,
      WM_AUTOSPAWN: 'off',
      ...env,
    });
    const log = silentLogger();
    // The NATS adapters as production opens them for this configuration.
    const { ports } = await openNatsPorts(cfg, log);
    const system = await createWhere(
      cfg,
      { ...ports, fly, clock: systemClock, timers: new SystemTimers(), ids: new UlidIds(), log },
      { beatMs: 250 },
    );
    const urls = await system.start();
    let stopped = false;
    const region: Region = {
      name,
      cfg,
      system,
      base: urls.publicUrl!,
      priv: urls.privateUrl!,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await system.stop();
      },
    };
    regions.push(region);
    return region;
  }

  try {
    for (const r of regionNames) await start(r);
  } catch (err) {
    // A region that fails to start must not leave the server (or the others) running.
    for (const r of regions) await r.stop();
    await nats.cleanup();
    throw err;
  }
  return {
    nats,
    fly,
    regions,
    start,
    callback(to, body) {
      const raw = JSON.stringify(body);
      return fetch(`${to.priv}/api/machine_status`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(
            deriveLaunchKey(SECRET, String(body.launchId)),
            raw,
            Date.now(),
          ),
        },
        body: raw,
      });
    },
    async stop() {
      for (const r of regions) await r.stop();
      await nats.cleanup();
    },
  };
}

export function post(
  region: Region,
  body: unknown = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${region.base}/launches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: region.base, ...headers },
    body: JSON.stringify(body),
  });
}
