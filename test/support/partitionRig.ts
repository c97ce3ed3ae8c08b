/**
 * G4, a region partition: two nats-servers in one JetStream cluster whose only route runs through a
 * TcpCut relay, one landing instance on each side (sharing one Fly fake: Fly is reachable from
 * both regions), clicks on both sides while the route is cut and healed. Used by the CI test with
 * short partitions and by bench/reliability with the goal's 5 × 10 s.
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { silentLogger } from '../../src/shared/log.js';
import { createWhere, type WhereSystem } from '../../src/where/system.js';
import { openNatsPorts } from '../../src/where/wiring.js';
import { freePorts, NatsServer } from './natsServer.js';
import { TcpCut } from './tcpCut.js';
import { testConfig } from './whereRig.js';

export interface PartitionOptions {
  partitions: number;
  /** How long each partition lasts. */
  cutMs: number;
  /** Healed time between partitions (and after the last one, before the final check). */
  healMs: number;
  /** Each side clicks once per this period while the route is cut. */
  clickEveryMs: number;
  cap: number;
  /** A launch whose VM never calls back fails after this long and destroys its machine (churn). */
  readyTimeoutMs: number;
  /** Time allowed for the projections to agree after the last heal before the run is failed. */
  convergeTimeoutMs: number;
}

export interface PartitionResult {
  samples: number;
  maxLive: number;
  cap: number;
  clicks: { side: string; cut: boolean; status: number; says?: string }[];
  flyCreates: number;
  /** Milliseconds after each heal until both fleets were identical (-1: not within the timeout). */
  convergeMs: number[];
  /** Both fleets identical at the end. */
  identical: boolean;
  /** Messages published on one side and seen on the other while cut: must be 0 (a real cut). */
  leakedWhileCut: number;
  relay: { accepted: number; refused: number };
}

interface Side {
  name: string;
  server: NatsServer;
  system: WhereSystem;
  base: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What both instances must agree on: the map (machines and the cap count). */
export function fleetKey(system: WhereSystem): string {
  const f = system.services.fleet;
  return JSON.stringify({ machines: f.machines(), capacity: f.capacity() });
}

async function waitJetStream(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const nc = await connect({ servers: url, timeout: 2000 }).catch((e: unknown) => {
      last = e;
      return undefined;
    });
    if (nc) {
      try {
        await (await jetstreamManager(nc, { timeout: 2000 })).getAccountInfo();
        return;
      } catch (e) {
        last = e;
      } finally {
        await nc.close();
      }
    }
    await sleep(250);
  }
  throw new Error(`JetStream not ready through ${url}: ${String(last)}`);
}

export async function runPartition(o: PartitionOptions): Promise<PartitionResult> {
  const [clusterA, clusterB] = (await freePorts(2)) as [number, number];
  // Each server dials the other only through a relay (clustered JetStream needs configured
  // routes on every node), so cutting both relays cuts every route.
  const toB = await TcpCut.start(clusterB);
  const toA = await TcpCut.start(clusterA);
  const relays = [toA, toB];
  const relay = {
    get isCut() {
      return toA.isCut;
    },
    cut: () => relays.forEach((r) => r.cut()),
    heal: () => relays.forEach((r) => r.heal()),
    close: () => Promise.all(relays.map((r) => r.close())),
    get accepted() {
      return toA.accepted + toB.accepted;
    },
    get refused() {
      return toA.refused + toB.refused;
    },
  };
  const servers: NatsServer[] = [];
  const sides: Side[] = [];
  const timers: NodeJS.Timeout[] = [];
  const fly = new FakeFlyMachines();
  try {
    servers.push(
      await NatsServer.start({
        serverName: 'part-b',
        cluster: { name: 'wm-part', port: clusterB, routes: [toA.port] },
      }),
    );
    servers.push(
      await NatsServer.start({
        serverName: 'part-a',
        cluster: { name: 'wm-part', port: clusterA, routes: [toB.port] },
      }),
    );
    const [b, a] = servers as [NatsServer, NatsServer];
    await waitJetStream(a.url, 30_000);
    await waitJetStream(b.url, 30_000);

    for (const [name, server] of [
      ['ams', a],
      ['syd', b],
    ] as const) {
      const cfg = testConfig({
        WM_INSTANCE_ID: `where-${name}`,
        FLY_REGION: name,
        NATS_URL: server.url,
        WM_CALLBACK_SECRET: 'p'.repeat(48),
        WM_AUTOSPAWN: 'off',
        WM_MAX_MACHINES: String(o.cap),
        WM_READY_TIMEOUT_MS: String(o.readyTimeoutMs),
        WM_COOLDOWN_MS: '0',
        WM_LAUNCHES_PER_MINUTE: '10000',
        WM_REQUESTS_PER_MINUTE: '1000000',
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
      sides.push({ name, server, system, base: urls.publicUrl! });
    }

    // Live VMs, as Fly counts them, every 50 ms.
    let samples = 0;
    let maxLive = 0;
    const sample = () => {
      samples++;
      maxLive = Math.max(maxLive, fly.live().length);
    };
    timers.push(setInterval(sample, 50));

    // A core-NATS probe across the route: while cut, nothing published on A may reach B.
    const probeA = await connect({ servers: a.url });
    const probeB = await connect({ servers: b.url });
    let leakedWhileCut = 0;
    const sub = probeB.subscribe('wm.partition.probe', {
      callback: (_e, m) => {
        if (m.string() === 'cut') leakedWhileCut++;
      },
    });
    await probeB.flush();

    const clicks: PartitionResult['clicks'] = [];
    let ipSeq = 0;
    const click = async (side: Side) => {
      const cut = relay.isCut;
      const n = ++ipSeq;
      try {
        const res = await fetch(`${side.base}/launches`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            origin: side.base,
            'fly-client-ip': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
          },
          body: '{}',
          signal: AbortSignal.timeout(20_000),
        });
        const body = (await res.json().catch(() => ({}))) as {
          status?: string;
          code?: string;
          launchId?: string;
        };
        let says = body.status ?? body.code;
        if (body.status === 'failed' && body.launchId) {
          // Why it failed (the 202 body does not say): the launch's own view.
          const v = (await fetch(`${side.base}/launches/${body.launchId}`, {
            signal: AbortSignal.timeout(20_000),
          })
            .then((r) => r.json())
            .catch(() => ({}))) as { reason?: string };
          says = `failed:${v.reason ?? '?'}`;
        }
        clicks.push({ side: side.name, cut, status: res.status, ...(says ? { says } : {}) });
      } catch {
        clicks.push({ side: side.name, cut, status: 0 });
      }
      sample();
    };
    const inflight = new Set<Promise<void>>();
    for (const side of sides) {
      timers.push(
        setInterval(() => {
          // Clicks land while the route is cut; healed time is for measuring convergence.
          if (!relay.isCut) return;
          const p = click(side);
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }, o.clickEveryMs),
      );
    }

    const convergeMs: number[] = [];
    const [sa, sb] = sides as [Side, Side];
    for (let i = 0; i < o.partitions; i++) {
      relay.cut();
      const until = Date.now() + o.cutMs;
      while (Date.now() < until) {
        probeA.publish('wm.partition.probe', 'cut');
        await sleep(100);
      }
      await probeA.flush();
      relay.heal();
      const healedAt = Date.now();
      let converged = -1;
      const wait = Math.max(o.healMs, o.convergeTimeoutMs);
      while (Date.now() - healedAt < wait) {
        if (converged < 0 && fleetKey(sa.system) === fleetKey(sb.system))
          converged = Date.now() - healedAt;
        if (converged >= 0 && Date.now() - healedAt >= o.healMs) break;
        await sleep(50);
      }
      convergeMs.push(converged);
    }

    // Stop clicking; let what is in flight finish, then compare the two maps once more.
    for (const t of timers.splice(0)) clearInterval(t);
    await Promise.allSettled([...inflight]);
    const settleUntil = Date.now() + o.convergeTimeoutMs;
    let identical = false;
    while (Date.now() < settleUntil) {
      if (fleetKey(sa.system) === fleetKey(sb.system)) {
        identical = true;
        break;
      }
      await sleep(100);
    }
    sub.unsubscribe();
    await probeA.close();
    await probeB.close();
    return {
      samples,
      maxLive,
      cap: o.cap,
      clicks,
      flyCreates: fly.count('create'),
      convergeMs,
      identical,
      leakedWhileCut,
      relay: { accepted: relay.accepted, refused: relay.refused },
    };
  } finally {
    for (const t of timers) clearInterval(t);
    relay.heal();
    for (const s of sides) await s.system.stop();
    await relay.close();
    for (const s of servers) await s.cleanup();
  }
}

/** Click outcomes grouped as `status: count`, split by whether the route was cut. */
export function tally(clicks: PartitionResult['clicks']): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of clicks) {
    const k = `${c.side}${c.cut ? ' (cut)' : ''}`;
    const row = (out[k] ??= {});
    const v = `${c.status}${c.says ? ` ${c.says}` : ''}`;
    row[v] = (row[v] ?? 0) + 1;
  }
  return out;
}
