/**
 * GET /metrics after a real launch through the local platform: the landing app (its Fly client
 * against the Machines API emulator, which runs the real VM bundle that calls home) is scraped
 * before and after one launch from click to destroyed, and every counter and histogram the launch
 * touches moved by exactly what the stored facts say. Both scrapes (and the emulator's own
 * /metrics) parse with a strict Prometheus text-format parser. The public listener has no /metrics.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { FlyMachinesHttp } from '../../../src/adapters/fly/client.js';
import { startFlyLocal, type FlyLocalHandle } from '../../../src/flylocal/index.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { WhereConfig } from '../../../src/where/config.js';
import { WhereMetrics, LAUNCH_PHASES } from '../../../src/where/metrics.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import { parsePromText, sampleValue, type Family } from '../../support/promText.js';
import { freePort } from '../../support/stack.js';
import { testConfig } from '../../support/whereRig.js';

let flylocal: FlyLocalHandle | undefined;
let system: WhereSystem | undefined;
let cfg: WhereConfig;
let store: MemoryEventStore;
let base = '';
let priv = '';

beforeAll(async () => {
  flylocal = await startFlyLocal({ port: 0, closeGraceMs: 1000, profile: 'fast' });
  cfg = testConfig({
    PRIVATE_PORT: String(await freePort()),
    FLY_API_BASE_URL: flylocal.apiUrl,
    FLY_API_TOKEN: flylocal.token,
    // A ready VM nobody visits switches itself off after this: the launch ends on its own.
    WM_VM_IDLE_MS: '1500',
  });
  const metrics = new WhereMetrics({ now: () => Date.now() });
  store = new MemoryEventStore();
  system = await createWhere(
    cfg,
    {
      store,
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      // The client-side rate limits stay on, so the token wait is measured too.
      fly: new FlyMachinesHttp({
        baseUrl: flylocal.apiUrl,
        token: flylocal.token,
        app: cfg.fly.vmApp,
        observer: metrics.fly,
      }),
      clock: systemClock,
      timers: new SystemTimers(systemClock),
      ids: new UlidIds(),
      log: silentLogger(),
    },
    { metrics, beatMs: 200 },
  );
  const urls = await system.start();
  base = urls.publicUrl!;
  priv = urls.privateUrl!;
});

afterAll(async () => {
  await system?.stop();
  await flylocal?.close();
});

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePromText(await res.text());
}

const launchStatus = async (id: string): Promise<string> => {
  const res = await fetch(`${base}/launches/${id}`, { headers: { accept: 'application/json' } });
  return ((await res.json()) as { status: string }).status;
};

const post = (body: unknown) =>
  fetch(`${base}/launches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify(body),
  });

describe('GET /metrics', () => {
  it('is served on the private listener only', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    const m = await scrape(`${priv}/metrics`);
    // Defaults: process and event-loop metrics.
    expect(m.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(m.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    expect(sampleValue(m, 'wm_capacity_limit')).toBe(cfg.maxMachines);
    expect(sampleValue(m, 'wm_leader')).toBe(1);
    // Without NATS there is no connection to report.
    expect(m.has('wm_nats_connected')).toBe(false);
  });

  it('moves every counter and histogram of a launch by what its facts say', async () => {
    // Reconciliation runs at start (the leader lists the machines); wait for it to settle.
    await expect
      .poll(
        async () =>
          sampleValue(await scrape(`${priv}/metrics`), 'wm_reconciler_runs_total', {
            result: 'ok',
          }),
        {
          timeout: 10_000,
        },
      )
      .toBeGreaterThanOrEqual(1);
    await system!.services.reconciler.idle();
    const before = await scrape(`${priv}/metrics`);
    const flyBefore = await scrape(`${flylocal!.apiUrl.replace(/\/v1$/, '')}/metrics`);
    let position = 0;
    for await (const e of store.readAll()) position = e.position;

    // A refusal (no launch made) and a forged callback, each counted apart.
    expect((await post({ region: 'nowhere' })).status).toBe(400);
    const forged = await fetch(`${priv}/api/machine_status`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-wm-signature': 't=1,v1=00' },
      body: JSON.stringify({
        launchId: '01J00000000000000000000000',
        machineId: '3d8d9e1fe47189',
        status: 'listening',
        region: 'ams',
        at: new Date().toISOString(),
      }),
    });
    expect(forged.status, await forged.text()).toBe(401);

    const res = await post({ region: 'ams' });
    expect(res.status).toBe(202);
    const { launchId } = (await res.json()) as { launchId: string };
    // The VM boots, calls home (ready), switches itself off when nobody comes, and is destroyed.
    await expect
      .poll(() => launchStatus(launchId), { timeout: 30_000, interval: 200 })
      .toBe('done');
    await system!.services.reconciler.idle();

    const after = await scrape(`${priv}/metrics`);
    const d = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);

    // Outcomes.
    expect(d('wm_launches_total', { region: 'ams', source: 'button', outcome: 'ready' })).toBe(1);
    expect(
      d('wm_launches_total', {
        region: cfg.region,
        source: 'button',
        outcome: 'refused:BAD_REGION',
      }),
    ).toBe(1);

    // Phases: one observation each, of exactly the time between the facts that bound it.
    const facts = await store.read(`launch.${launchId}`);
    const at = (type: string, ok: (data: Record<string, unknown>) => boolean = () => true) => {
      const f = facts.find((e) => e.type === type && ok(e.data as Record<string, unknown>));
      expect(f, type).toBeDefined();
      return Date.parse(f!.at);
    };
    const requested = at('launch.requested');
    const created = at('fly.machineCreated');
    const started = at('fly.machineObserved', (x) => x.state === 'started');
    const listening = at('vm.listening');
    const destroyed = Date.parse(facts.at(-1)!.at);
    const expected: Record<(typeof LAUNCH_PHASES)[number], number> = {
      click_to_created: created - requested,
      created_to_started: started - created,
      started_to_listening: listening - started,
      click_to_ready: listening - requested,
      ready_to_destroyed: destroyed - listening,
    };
    for (const phase of LAUNCH_PHASES) {
      const labels = { region: 'ams', phase };
      expect(d('wm_launch_phase_seconds_count', labels), phase).toBe(1);
      expect(d('wm_launch_phase_seconds_sum', labels), phase).toBeCloseTo(
        expected[phase] / 1000,
        6,
      );
      expect(d('wm_launch_phase_seconds_bucket', { ...labels, le: '+Inf' }), phase).toBe(1);
    }

    // The Machines API: one create answered 200, timed, after one token wait; no 429, no retry.
    expect(d('wm_fly_api_requests_total', { action: 'create', status: '200' })).toBe(1);
    expect(d('wm_fly_api_seconds_count', { action: 'create' })).toBe(1);
    expect(d('wm_fly_api_token_wait_seconds_count', { action: 'create' })).toBe(1);
    expect(d('wm_fly_api_rate_limited_total', { action: 'create' })).toBe(0);
    expect(d('wm_fly_api_retries_total', { action: 'create' })).toBe(0);
    // Every request the emulator answered, the client counted (by action and status).
    const flyAfter = await scrape(`${flylocal!.apiUrl.replace(/\/v1$/, '')}/metrics`);
    for (const s of flyAfter.get('flylocal_api_requests_total')!.samples) {
      const was = sampleValue(flyBefore, s.name, s.labels);
      expect(d('wm_fly_api_requests_total', s.labels), JSON.stringify(s.labels)).toBe(
        s.value - was,
      );
    }
    expect(
      sampleValue(flyAfter, 'flylocal_api_requests_total', { action: 'create', status: '200' }) -
        sampleValue(flyBefore, 'flylocal_api_requests_total', { action: 'create', status: '200' }),
    ).toBe(1);
    expect(sampleValue(flyAfter, 'flylocal_machines', { state: 'destroyed' })).toBe(
      sampleValue(flyBefore, 'flylocal_machines', { state: 'destroyed' }) + 1,
    );

    // The VM's two calls home (listening, stopping) were taken; the forged one was not.
    expect(d('wm_callbacks_total', { result: 'accepted' })).toBe(2);
    expect(d('wm_callbacks_total', { result: 'forged' })).toBe(1);

    // The store: every event appended since the first scrape was counted and timed once.
    let appended = 0;
    for await (const _ of store.readAll(position)) appended++;
    expect(appended).toBeGreaterThanOrEqual(facts.length);
    expect(d('wm_events_appended_total')).toBe(appended);
    expect(d('wm_event_store_append_seconds_count')).toBe(appended);
    // One instance: nothing folded from another, so no lag observed.
    expect(sampleValue(after, 'wm_event_store_lag_seconds_count')).toBe(0);

    // Everything is back where it was: no machine, no open launch, no orphan.
    expect(sampleValue(after, 'wm_capacity_live')).toBe(0);
    expect(sampleValue(after, 'wm_actors_open', { kind: 'launch' })).toBe(0);
    expect(sampleValue(after, 'wm_actors_open', { kind: 'vm' })).toBe(0);
    expect(sampleValue(after, 'wm_sse_clients', { stream: 'fleet' })).toBe(0);
    expect(d('wm_orphans_destroyed_total')).toBe(0);
  });
});

describe('the Grafana dashboard (docs/grafana/wheremachines.json)', () => {
  interface Panel {
    title: string;
    type: string;
    datasource: { uid: string };
    gridPos: { x: number; y: number; w: number; h: number };
    targets: { refId: string; expr: string }[];
  }
  const dashboard = JSON.parse(
    readFileSync(new URL('../../../docs/grafana/wheremachines.json', import.meta.url), 'utf8'),
  ) as {
    uid: string;
    title: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string; query: unknown }[] };
    panels: Panel[];
  };

  it('is a dashboard Grafana imports: a uid, panels with ids, positions and Prometheus queries', () => {
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
    for (const p of dashboard.panels) {
      expect(p.datasource.uid, p.title).toBe('${datasource}');
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const want of [
      /launches by region/i,
      /click → ready/i,
      /API errors/i,
      /capacity/i,
      /SSE/i,
    ])
      expect(titles).toMatch(want);
    expect(JSON.stringify(dashboard.panels)).toContain('wm_event_store_lag_seconds_bucket');
  });

  it('queries only metrics the app serves, with the labels they have', async () => {
    const served = await scrape(`${priv}/metrics`);
    // wm_nats_connected exists only with NATS (checked where the app runs on NATS).
    const natsOnly = new Set(['wm_nats_connected']);
    const suffixes = ['_bucket', '_count', '_sum'];
    for (const p of dashboard.panels) {
      for (const t of p.targets) {
        const names = [...t.expr.matchAll(/\b(wm_[a-z_]+)(\{[^}]*\})?/g)];
        expect(names.length, t.expr).toBeGreaterThan(0);
        for (const [, name, selector] of names) {
          if (natsOnly.has(name!)) continue;
          const base = suffixes.find(
            (s) => name!.endsWith(s) && served.get(name!.slice(0, -s.length))?.type === 'histogram',
          );
          const family = served.get(base ? name!.slice(0, -base.length) : name!);
          expect(family, `${p.title}: ${name}`).toBeDefined();
          // Every label a selector or a "by (…)" names is one the family carries.
          const labels = new Set(family!.samples.flatMap((s) => Object.keys(s.labels)));
          const named = [
            ...[...(selector ?? '').matchAll(/([a-z_]+)\s*(=~|!=|=)/g)].map((m) => m[1]!),
          ];
          for (const l of named)
            if (family!.samples.length) expect(labels, `${name} ${l}`).toContain(l);
        }
      }
    }
  });
});

describe('the Prometheus text parser', () => {
  it('refuses what Prometheus would refuse', () => {
    const ok = '# HELP a_total x\n# TYPE a_total counter\na_total{r="ams"} 1\n';
    expect(sampleValue(parsePromText(ok), 'a_total', { r: 'ams' })).toBe(1);
    const bad = [
      'a_total 1', // no final newline
      '# TYPE a counter\n# TYPE a counter\na 1\n', // TYPE twice
      '# TYPE a counter\na{r=ams} 1\n', // unquoted label value
      '# TYPE a counter\na{1r="x"} 1\n', // bad label name
      '# TYPE 1a counter\n', // bad metric name
      '# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n', // family split
      '# TYPE a counter\na 1\na 2\n', // duplicate series
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // decreasing
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\n', // no _sum
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE a counter\na one\n', // bad value
    ];
    for (const text of bad) expect(() => parsePromText(text), text).toThrow();
  });
});
