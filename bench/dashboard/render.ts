/**
 * `npm run dashboard:render`: a picture of docs/grafana/wheremachines.json drawn from a local run,
 * without Grafana or Prometheus. It runs the landing app against the Machines API emulator (real VM
 * processes that call home, as test/process/where/metrics.test.ts does), makes launches in three
 * regions with a few injected API faults, scrapes /metrics every two seconds, evaluates each panel's
 * queries with the mini-evaluator (promql.ts), draws the panels (draw.ts) and screenshots the page
 * with Chromium to docs/grafana/wheremachines.png.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { FlyMachinesHttp } from '../../src/adapters/fly/client.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { startFlyLocal } from '../../src/flylocal/index.js';
import { silentLogger } from '../../src/shared/log.js';
import { WhereMetrics } from '../../src/where/metrics.js';
import { createWhere } from '../../src/where/system.js';
import { parsePromText } from '../../test/support/promText.js';
import { CHROMIUM } from '../../test/support/require.js';
import { testConfig } from '../../test/support/whereRig.js';
import { freePort } from '../lib/net.js';
import { requireBuild } from '../lib/vmBoot.js';
import { drawPage, layout, pageHeight } from './draw.js';
import { dashboardSchema, evaluatePanels } from './panels.js';
import type { Scrape } from './promql.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const DASHBOARD = join(ROOT, 'docs/grafana/wheremachines.json');
const OUT = join(ROOT, 'docs/grafana/wheremachines.png');

const RUN_S = 30;
const SCRAPE_EVERY_S = 2;
/** What Grafana would pick for `$__rate_interval` with this scrape interval (4 × scrape, at least). */
const RATE_INTERVAL = '10s';
const REGIONS = ['ams', 'ord', 'syd'] as const;
/** Seconds into the run at which a visitor clicks (regions in turn). */
const CLICKS_AT_S = [1, 2.5, 4, 6, 8, 10, 12.5, 15, 17, 19, 21.5, 24];
/**
 * When the Machines API misbehaves, once each time: its next create answers 429 (that launch fails,
 * creates are not retried) and its next wait 503 (retried). Twice, because a counter's series only
 * appears at its first increment, and a rate needs it to rise again.
 */
const FAULTS_AT_S = [9, 19];
const WIDTH = 1200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The running system: the emulator and the landing app, with the URLs the run needs. */
async function startSystem() {
  const flylocal = await startFlyLocal({ port: 0, closeGraceMs: 1000 });
  const cfg = testConfig({
    PRIVATE_PORT: String(await freePort()),
    FLY_API_BASE_URL: flylocal.apiUrl,
    FLY_API_TOKEN: flylocal.token,
    WM_VM_IDLE_MS: '2000',
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '1000',
  });
  const metrics = new WhereMetrics({ now: () => Date.now() });
  const system = await createWhere(
    cfg,
    {
      store: new MemoryEventStore(),
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
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
  return {
    base: urls.publicUrl!,
    priv: urls.privateUrl!,
    admin: flylocal.adminUrl,
    token: flylocal.token,
    stop: async () => {
      await system.stop();
      await flylocal.close();
    },
  };
}

async function scrape(priv: string, t: number): Promise<Scrape> {
  const res = await fetch(`${priv}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const samples = [...parsePromText(await res.text()).values()].flatMap((f) => f.samples);
  return { t, samples };
}

function click(base: string, region: string): Promise<Response> {
  return fetch(`${base}/launches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ region }),
  });
}

/** A visitor watching the map: an open fleet stream, closed at `closeAtMs`. */
function watchMap(base: string, closeAtMs: number): void {
  const ctl = new AbortController();
  setTimeout(() => ctl.abort(), closeAtMs).unref();
  fetch(`${base}/events`, { signal: ctl.signal, headers: { accept: 'text/event-stream' } })
    .then(async (res) => {
      // Read and drop: only the open stream matters.
      const reader = res.body?.getReader();
      while (reader && !(await reader.read()).done);
    })
    .catch(() => undefined);
}

async function misbehave(sys: { admin: string; token: string }): Promise<void> {
  const res = await fetch(`${sys.admin}/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${sys.token}` },
    body: JSON.stringify({ actions: { create: { script: ['429'] }, wait: { script: ['503'] } } }),
  });
  if (!res.ok) throw new Error(`setting the emulator's faults answered ${res.status}`);
}

/** Run the scenario and return every scrape, oldest first (t in seconds from the start). */
async function run(): Promise<{ scrapes: Scrape[]; clicks: number }> {
  const sys = await startSystem();
  const scrapes: Scrape[] = [];
  const started = performance.now();
  const at = (s: number) => Math.max(0, started + s * 1000 - performance.now());
  const pending: Promise<unknown>[] = [];
  try {
    watchMap(sys.base, (RUN_S - 4) * 1000);
    setTimeout(() => watchMap(sys.base, 12_000), 8_000).unref();
    CLICKS_AT_S.forEach((s, i) =>
      pending.push(sleep(at(s)).then(() => click(sys.base, REGIONS[i % REGIONS.length]!))),
    );
    // A click for a region that does not exist: refused, counted apart.
    pending.push(sleep(at(7)).then(() => click(sys.base, 'nowhere')));
    for (const s of FAULTS_AT_S) pending.push(sleep(at(s)).then(() => misbehave(sys)));
    for (let s = 0; s <= RUN_S; s += SCRAPE_EVERY_S) {
      await sleep(at(s));
      scrapes.push(await scrape(sys.priv, (performance.now() - started) / 1000));
      process.stdout.write(`scraped at ${s} s\n`);
    }
    await Promise.all(pending);
  } finally {
    await sys.stop();
  }
  return { scrapes, clicks: CLICKS_AT_S.length + 1 };
}

async function screenshot(html: string, height: number): Promise<void> {
  if (!CHROMIUM) throw new Error('Chromium is missing: apt-get install -y chromium');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: WIDTH + 32, height } });
    await page.setContent(html, { waitUntil: 'load' });
    mkdirSync(dirname(OUT), { recursive: true });
    await page.screenshot({ path: OUT, fullPage: true });
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  requireBuild();
  const dashboard = dashboardSchema.parse(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
  const { scrapes, clicks } = await run();
  const results = evaluatePanels(dashboard, scrapes, {
    region: '.*',
    __rate_interval: RATE_INTERVAL,
  });
  const caption =
    `Drawn by npm run dashboard:render from a local run, not by Grafana: ${clicks} clicks in ` +
    `${REGIONS.join(', ')} and one refused, two creates answered 429 and two waits 503 by the ` +
    `emulator, over ${RUN_S} s; /metrics scraped every ${SCRAPE_EVERY_S} s, $__rate_interval = ` +
    `${RATE_INTERVAL}, $region = All.`;
  const span = { t0: scrapes[0]!.t, t1: scrapes.at(-1)!.t };
  const html = drawPage(dashboard, results, { width: WIDTH, caption, span });
  // The page itself, for a look in a browser (.scratch/ is not committed).
  mkdirSync(join(ROOT, '.scratch'), { recursive: true });
  writeFileSync(join(ROOT, '.scratch/wheremachines-dashboard.html'), html);
  await screenshot(html, pageHeight(layout(dashboard, WIDTH)) + 90);
  process.stdout.write(`wrote ${OUT} (${Math.round(statSync(OUT).size / 1024)} KB)\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
