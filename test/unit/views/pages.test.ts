import { describe, expect, it } from 'vitest';
import { REGIONS } from '../../../src/shared/regions.js';
import {
  FAILURE_WORDS,
  type FleetMachine,
  type FleetSnapshot,
  type LaunchView,
} from '../../../src/where/wire.js';
import { renderLandingPage } from '../../../src/where/views/landing.js';
import { renderDashboard, type AutospawnerView } from '../../../src/where/views/dashboard.js';
import { renderLaunchProgressPage } from '../../../src/where/views/launchProgress.js';
import { PAGE_CSS } from '../../../src/where/views/styles.js';
import { CONFIG_ELEMENT_ID, DEFAULT_TIMING, parseConfig } from '../../../src/where/ui/config.js';

const AT = '2025-01-01T00:10:00.000Z';
const machine = (
  machineId: string,
  region: string,
  over: Partial<FleetMachine> = {},
): FleetMachine => ({
  machineId,
  region,
  status: 'started',
  source: 'button',
  createdAt: '2025-01-01T00:09:30.000Z',
  updatedAt: AT,
  ...over,
});
const fleet = (machines: FleetMachine[]): FleetSnapshot => ({
  machines,
  capacity: { live: machines.length, limit: 8 },
  at: AT,
});
const EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>';

const landing = (over: Partial<Parameters<typeof renderLandingPage>[0]> = {}) =>
  renderLandingPage({
    edgeRegion: 'fra',
    fleet: fleet([]),
    assets: { appJs: '/assets/app.js' },
    ...over,
  });

const auto: AutospawnerView = {
  state: 'active',
  intervalMs: 45_000,
  regions: ['ams', 'nrt'],
  nextRegion: 'nrt',
  nextSpawnAt: '2025-01-01T00:10:12.000Z',
  visitors: 3,
};
const dash = (over: Partial<Parameters<typeof renderDashboard>[0]> = {}) =>
  renderDashboard({
    edgeRegion: 'fra',
    fleet: fleet([]),
    autospawner: auto,
    assets: { appJs: '/assets/dash.js' },
    machineUrl: 'https://useless-machine.fly.dev/machine?instance={id}',
    ...over,
  });

/** Every tag the page opens, by name: what an injection would add to. */
function tagCounts(page: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of page.matchAll(/<([a-zA-Z][a-zA-Z0-9-]*)/g))
    counts.set(m[1]!.toLowerCase(), (counts.get(m[1]!.toLowerCase()) ?? 0) + 1);
  return counts;
}

function island(page: string): string {
  const m = new RegExp(
    `<script type="application/json" id="${CONFIG_ELEMENT_ID}"[^>]*>(.*?)</script>`,
    's',
  ).exec(page);
  expect(m).not.toBeNull();
  return m![1]!;
}

/** What a strict CSP forbids inside the markup: handlers, inline style attributes, javascript: URLs. */
function expectCspFriendly(page: string): void {
  const tags = [...page.matchAll(/<[a-zA-Z][^>]*>/g)].map((m) => m[0]);
  expect(tags.length).toBeGreaterThan(50);
  for (const full of tags) {
    // Attribute values are quoted and cannot contain a quote (it is escaped), so dropping them
    // leaves only real attribute names to check.
    const tag = full.replace(/"[^"]*"/g, '""');
    expect(full).not.toMatch(/=\s*"?javascript:/i);
    expect(tag).not.toMatch(/\son[a-z]+\s*=/i);
    expect(tag).not.toMatch(/\sstyle\s*=/i);
    if (full.startsWith('<script')) expect(full).toMatch(/type="(module|application\/json)"/);
  }
}

describe('landing page', () => {
  it('has the parts a visitor needs, working without JavaScript', () => {
    const page = landing();
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain(
      '<form class="launch" id="launch-form" method="post" action="/launches">',
    );
    expect(page).toMatch(/<button class="big-button" id="launch-button" type="submit"/);
    expect(page).toMatch(/<span class="timer" id="launch-timer" role="timer"[^>]*>0:00\.0<\/span>/);
    expect(page).toMatch(/<p class="status" id="launch-status" role="status" aria-live="polite">/);
    expect(page).toContain(
      'Your Fly.io edge region is <strong>Frankfurt</strong> <code>fra</code>.',
    );
    expect(page).toContain('<li class="chip none">none right now</li>');
    expect(page).toContain('0 of 8 machine slots in use');
    expect(page).toContain('<svg class="map" id="region-map"');
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(page).toContain('<script type="module" src="/assets/app.js"></script>');
    expect(page).toContain('<noscript>');
    expectCspFriendly(page);
  });

  it('renders the initial fleet into the text and the map', () => {
    const page = landing({
      fleet: fleet([machine('a', 'nrt'), machine('b', 'nrt'), machine('c', 'gru')]),
    });
    expect(page).toContain(
      '<li class="chip" data-region="gru">Sao Paulo <span class="code">gru</span></li>',
    );
    expect(page).toContain(
      '<li class="chip" data-region="nrt">Tokyo <span class="code">nrt</span> <span class="count">×2</span></li>',
    );
    expect(page).toMatch(/<g class="region live" id="region-nrt"/);
    expect(page).toMatch(/<g class="region edge" id="region-fra"/);
  });

  it('speaks sensibly without a Fly-Region header, and of a region not in the table', () => {
    expect(landing({ edgeRegion: undefined })).toContain(
      'Your request did not pass through a Fly.io edge, so you are probably on <strong>your computer</strong>',
    );
    const odd = landing({ edgeRegion: 'xyz' });
    expect(odd).toContain(
      '<strong>an unlisted region (xyz)</strong>, which is not on our map yet.',
    );
    expect(odd).not.toMatch(/class="region edge/);
  });

  it('escapes hostile machine ids, regions and edge headers', () => {
    const clean = tagCounts(
      landing({ edgeRegion: undefined, fleet: fleet([machine('ok', 'zzz')]) }),
    );
    const page = landing({
      edgeRegion: EVIL,
      fleet: fleet([machine(EVIL, EVIL), machine('x', '</ul><b>')]),
    });
    const counts = tagCounts(page);
    // Same elements as a page with harmless unknown strings, plus one more chip: nothing injected.
    expect(counts.get('script')).toBe(clean.get('script'));
    expect(counts.get('img')).toBeUndefined();
    expect(counts.get('b')).toBeUndefined();
    expect(counts.get('li')).toBe(clean.get('li')! + 1);
    expect(page).toContain('&quot;&gt;&lt;script&gt;');
    expectCspFriendly(page);
  });

  it('puts the nonce on every inline element and the config in a closed JSON island', () => {
    const page = landing({
      nonce: 'abc123',
      timing: { failureResetMs: 50 },
      endpoints: { events: '/fleet</script>' },
    });
    expect(page).toContain('<style nonce="abc123">');
    expect(page).toContain('<script type="module" src="/assets/app.js" nonce="abc123"></script>');
    expect(page).toMatch(
      new RegExp(`<script type="application/json" id="${CONFIG_ELEMENT_ID}" nonce="abc123">`),
    );
    const cfg = parseConfig(island(page));
    expect(cfg.timing).toEqual({ ...DEFAULT_TIMING, failureResetMs: 50 });
    expect(cfg.endpoints).toEqual({ launches: '/launches', events: '/fleet</script>' });
    expect(cfg.failureWords).toEqual(FAILURE_WORDS);
    expect(cfg.edgeRegion).toBe('fra');
  });

  it('links the stylesheet instead of inlining it when the server serves one', () => {
    const page = landing({ assets: { appJs: '/a.js', css: '/assets/app.css' } });
    expect(page).toContain('<link rel="stylesheet" href="/assets/app.css">');
    expect(page).not.toContain('<style');
  });

  it('the stylesheet has a dark theme and honours reduced motion', () => {
    expect(PAGE_CSS).toContain('@media (prefers-color-scheme: dark)');
    expect(PAGE_CSS).toContain('@media (prefers-reduced-motion: reduce)');
    expect(PAGE_CSS).not.toContain('</style');
    expect(PAGE_CSS).not.toMatch(/url\(\s*["']?https?:/); // no external assets
  });
});

describe('dashboard', () => {
  it('has a launch form per region, sorted by city, each posting its region', () => {
    const page = dash();
    const regions = [
      ...page.matchAll(
        /<form class="tile-form" method="post" action="\/launches" data-region="([a-z]+)"><input type="hidden" name="region" value="\1">/g,
      ),
    ].map((m) => m[1]);
    expect(regions).toEqual(
      [...REGIONS].sort((a, b) => a.city.localeCompare(b.city, 'en')).map((r) => r.code),
    );
    expectCspFriendly(page);
  });

  it('summarises machines by region, lists them with links, and shows capacity', () => {
    const page = dash({
      fleet: fleet([
        machine('m-1', 'nrt', { status: 'listening' }),
        machine('m-2', 'nrt'),
        machine('m-3', 'gru'),
      ]),
    });
    expect(page).toContain('<span id="machine-total">3</span>');
    expect(page).toContain('<span id="region-total">2</span>');
    expect(page).toMatch(
      /<li class="tile panel" data-tile="nrt" data-live="true">[\s\S]*?<span class="tile-count" data-count="2">2 live<\/span>/,
    );
    expect(page).toContain(
      '<a href="https://useless-machine.fly.dev/machine?instance=m-1"><code>m-1</code></a>',
    );
    expect(page).toContain('<span class="badge" data-status="listening">listening</span>');
    expect(page).toContain('<td class="age" data-created="2025-01-01T00:09:30.000Z">30 s</td>');
    expect(page).toContain('<span id="cap-live">3</span>');
    expect(page).toContain('<span id="cap-limit">8</span>');
  });

  it('shows each region’s typical launch time beside its button, and says when none is timed yet', () => {
    const page = dash({
      launchTimes: {
        regions: { nrt: { medianMs: 2_440, count: 12 } },
        at: '2025-01-01T00:10:00.000Z',
      },
    });
    expect(page).toMatch(
      /<li class="tile panel" data-tile="nrt"[\s\S]*?<p class="tile-times" id="times-nrt" data-times="nrt">typical 2\.4 s \(last 12\)<\/p>[\s\S]*?<button class="tile-button" type="submit" data-state="idle" aria-describedby="times-nrt">/,
    );
    expect(page).toContain(
      '<p class="tile-times" id="times-fra" data-times="fra">no launch timed yet</p>',
    );
    // The map's marker names the time too, as on the visitor's map.
    expect(page).toMatch(
      /<g [^>]*id="region-nrt"[^>]*>[^]*?<title>[^<]*typical 2\.4 s \(last 12\)/,
    );
    expect(dash()).not.toContain('typical');
  });

  it('shows the autospawner and a switch that posts the opposite state', () => {
    const on = dash();
    expect(on).toContain(
      '<span class="badge" id="auto-state" data-state="active">active</span> Spawning',
    );
    expect(on).toContain('<form class="switch-form" method="post" action="/dash/autospawner">');
    expect(on).toContain('<input type="hidden" name="on" value="false">');
    expect(on).toContain(
      '<time id="next-spawn" datetime="2025-01-01T00:10:12.000Z">in 12 s</time>',
    );
    expect(on).toContain('Tokyo <code>nrt</code>');
    const off = dash({
      autospawner: { ...auto, state: 'off', nextSpawnAt: undefined, nextRegion: undefined },
    });
    expect(off).toContain('<input type="hidden" name="on" value="true">');
    expect(off).toContain('Switched off');
    expect(off).not.toContain('id="next-spawn"');
  });

  it('escapes hostile machine ids and regions, and encodes ids in links', () => {
    const page = dash({ fleet: fleet([machine(EVIL, EVIL)]) });
    expect(tagCounts(page).get('img')).toBeUndefined();
    expect(page).toContain(
      `href="https://useless-machine.fly.dev/machine?instance=${encodeURIComponent(EVIL)}"`,
    );
    expectCspFriendly(page);
  });

  it('never links a machine to a non-http URL', () => {
    const page = dash({
      fleet: fleet([machine('m-1', 'fra')]),
      machineUrl: 'javascript:alert({id})',
    });
    expect(page).toContain('<td><code>m-1</code></td>');
  });
});

describe('launch progress page (no JavaScript)', () => {
  const view = (status: LaunchView['status'], over: Partial<LaunchView> = {}): LaunchView => ({
    launchId: 'L1',
    status,
    region: 'fra',
    source: 'button',
    machineId: 'm-1',
    at: '2025-01-01T00:00:03.200Z',
    requestedAt: '2025-01-01T00:00:00.000Z',
    version: 2,
    ...over,
  });

  it('refreshes every second while the machine starts', () => {
    const page = renderLaunchProgressPage({ launch: view('created') });
    expect(page).toContain('<meta http-equiv="refresh" content="1">');
    expect(page).toContain('Machine <code>m-1</code> was created in Frankfurt and is booting.');
    expect(page).toContain('0:03.2');
  });

  it('sends the browser on to the machine when it is ready', () => {
    const page = renderLaunchProgressPage({
      launch: view('ready', { url: 'https://useless-machine.fly.dev/machine?instance=m-1' }),
    });
    expect(page).toContain(
      '<meta http-equiv="refresh" content="0; url=https://useless-machine.fly.dev/machine?instance=m-1">',
    );
    const evil = renderLaunchProgressPage({
      launch: view('ready', { url: 'javascript:alert(1)' }),
    });
    expect(evil).not.toContain('http-equiv');
    expect(evil).not.toContain('javascript:');
  });

  it('names failures and refusals in words, with a way back', () => {
    expect(renderLaunchProgressPage({ launch: view('failed', { reason: 'capacity' }) })).toContain(
      FAILURE_WORDS.capacity,
    );
    const refused = renderLaunchProgressPage({ error: { message: 'Slow down <please>' } });
    expect(refused).toContain('Slow down &lt;please&gt;');
    expect(refused).toContain('<a href="/">Back to the start</a>');
    expect(refused).not.toContain('http-equiv');
  });
});
