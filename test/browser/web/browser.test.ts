/**
 * The pages in a real Chromium against a scripted fake server: fleet markers, the launch button's
 * states, timer, announcements, redirect and failure reset, the dashboard, the no-JS form post,
 * and screenshots (light, dark, phone) in test-results/.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { CHROMIUM, needs } from '../../support/require.js';
import {
  FAILURE_WORDS,
  type FleetMachine,
  type FleetSnapshot,
  type LaunchView,
} from '../../../src/where/wire.js';
import { renderLandingPage } from '../../../src/where/views/landing.js';
import { renderDashboard, type AutospawnerView } from '../../../src/where/views/dashboard.js';
import { renderLaunchProgressPage } from '../../../src/where/views/launchProgress.js';
import { startFakeSite, type FakeSite } from './fakeSite.js';

const hasChromium = needs('Chromium at /usr/bin/chromium (apt-get install chromium)', CHROMIUM);
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
// Short enough to keep the tests quick, long enough that a loaded machine still reads the failed
// state before the reset (700 ms was not).
const TIMING = { failureResetMs: 2_500, successResetMs: 3_000, redirectDelayMs: 2_000 };
const SHOTS = 'test-results';

const now = () => new Date().toISOString();
const machine = (
  machineId: string,
  region: string,
  over: Partial<FleetMachine> = {},
): FleetMachine => ({
  machineId,
  region,
  status: 'listening',
  source: 'button',
  createdAt: now(),
  updatedAt: now(),
  ...over,
});
const snapshot = (machines: FleetMachine[]): FleetSnapshot => ({
  machines,
  capacity: { live: machines.length, limit: 8 },
  at: now(),
});

let requestedAt = Date.now();
function view(
  launchId: string,
  status: LaunchView['status'],
  version: number,
  afterMs: number,
  over: Partial<LaunchView> = {},
): LaunchView {
  return {
    launchId,
    status,
    region: 'fra',
    source: 'button',
    at: new Date(requestedAt + afterMs).toISOString(),
    requestedAt: new Date(requestedAt).toISOString(),
    version,
    ...(status === 'requested' ? {} : { machineId: `m-${launchId}` }),
    ...over,
  };
}
const accepted = (launchId: string, region = 'fra') => ({
  status: 202,
  body: { launchId, region, status: 'requested', events: `/launches/${launchId}/events` },
});

const autospawner = (): AutospawnerView => ({
  state: 'active',
  intervalMs: 45_000,
  regions: ['ams', 'nrt', 'gru'],
  nextRegion: 'nrt',
  nextSpawnAt: new Date(Date.now() + 30_000).toISOString(),
  visitors: 2,
});

// A real browser on a shared 2-core machine: generous per-test time, polling for every wait.
describe.skipIf(!hasChromium)('pages in Chromium', { timeout: 90_000 }, () => {
  let site: FakeSite;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let cspViolations: string[] = [];
  let initialFleet: FleetSnapshot;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    site = await startFakeSite();
    site.page('/', (nonce) =>
      renderLandingPage({
        edgeRegion: 'fra',
        fleet: initialFleet,
        assets: { appJs: '/assets/app.js' },
        nonce,
        timing: TIMING,
      }),
    );
    site.page('/dash', (nonce) =>
      renderDashboard({
        edgeRegion: 'fra',
        fleet: initialFleet,
        autospawner: autospawner(),
        assets: { appJs: '/assets/dash.js' },
        nonce,
        machineUrl: `${site.url}/machine?instance={id}`,
        timing: TIMING,
      }),
    );
    site.page('/launches/L-nojs', (nonce) =>
      renderLaunchProgressPage({ launch: view('L-nojs', 'created', 2, 1_200), nonce }),
    );
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  beforeEach(async () => {
    await context?.close();
    initialFleet = snapshot([machine('m-seed', 'ams')]);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    cspViolations = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
        cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => cspViolations.push(`page error: ${e.message}`));
    requestedAt = Date.now();
  });

  async function open(path: string, p: Page = page): Promise<void> {
    const before = site.fleetClients();
    await p.goto(site.url + path);
    await p.waitForSelector('body[data-fleet="open"]');
    await expect.poll(() => site.fleetClients()).toBeGreaterThan(before);
  }
  const classes = (sel: string) => page.$eval(sel, (e) => e.getAttribute('class') ?? '');
  const text = (sel: string) => page.$eval(sel, (e) => e.textContent ?? '');
  const state = () =>
    page.$eval('#launch-button', (e) => (e as HTMLButtonElement).dataset.state ?? '');

  it('renders the server fleet, then follows fleet messages: markers and text appear and disappear', async () => {
    await open('/');
    expect(await classes('#region-ams')).toContain('live');
    expect(await classes('#region-fra')).toContain('edge');
    expect(await text('#edge-text')).toContain('Frankfurt');

    // The first snapshot replaces what the server rendered, even when it is empty.
    site.fleet({ event: 'fleet', data: snapshot([]) });
    await expect.poll(() => classes('#region-ams')).not.toContain('live');
    expect(await text('#fleet-regions')).toBe('none right now');

    // Tapping a marker shows its code; tapping another moves the label.
    await page.click('#region-syd .dot');
    expect(await classes('#region-syd')).toContain('active');
    await expect
      .poll(() => page.$eval('#region-syd .code', (e) => getComputedStyle(e).opacity))
      .toBe('1');
    await page.click('#region-nrt .dot');
    expect(await classes('#region-syd')).not.toContain('active');
    expect(await classes('#region-nrt')).toContain('active');

    site.fleet({ event: 'fleet', data: snapshot([machine('m1', 'nrt'), machine('m2', 'nrt')]) });
    await expect.poll(() => classes('#region-nrt')).toContain('live');
    expect(await classes('#region-ams')).not.toContain('live');
    expect(await text('#fleet-regions')).toMatch(/Tokyo\s*nrt\s*×2/);
    expect(await page.$eval('#region-nrt title', (e) => e.textContent)).toBe(
      'Tokyo (nrt) · 2 Useless Machines running',
    );

    site.fleet({ event: 'machine', data: machine('m3', 'gru') });
    await expect.poll(() => classes('#region-gru')).toContain('live');

    // Malformed and hostile messages are ignored or shown as text, never as markup.
    site.fleet({ event: 'machine', data: '{not json' });
    site.fleet({ event: 'machine', data: JSON.stringify({ machineId: 'x', region: 'fra' }) });
    site.fleet({ event: 'machine', data: machine('<img src=x id=pwned>', '<b id=pwned2>') });
    await expect.poll(() => text('#fleet-regions')).toContain('<b id=pwned2>');
    expect(await page.$('#pwned')).toBeNull();
    expect(await page.$('#pwned2')).toBeNull();
    expect(await classes('#region-fra')).not.toContain('live');

    site.fleet({ event: 'machineGone', data: { machineId: 'm1', at: now() } });
    site.fleet({ event: 'machineGone', data: { machineId: 'm2', at: now() } });
    await expect.poll(() => classes('#region-nrt')).not.toContain('live');
    site.fleet({ event: 'fleet', data: snapshot([]) });
    await expect.poll(() => text('#fleet-regions')).toBe('none right now');
    expect(await page.$$eval('g.region.live', (els) => els.length)).toBe(0);
    site.fleet({ event: 'capacity', data: { live: 3, limit: 8 } });
    await expect.poll(() => text('#capacity')).toBe('3 of 8 machine slots in use');
    expect(cspViolations).toEqual([]);
  });

  it('launch: button states, announcements, a timer that starts on the first event and stops at ready, then the redirect', async () => {
    await open('/');
    expect(await text('#launch-status')).toBe('Press the button to start a machine.');
    expect(await page.getAttribute('#launch-status', 'aria-live')).toBe('polite');
    expect(await page.getAttribute('#launch-timer', 'role')).toBe('timer');
    site.replyToLaunch(accepted('L1'));
    const posts = site.posts.length;
    await page.click('#launch-button');
    await expect.poll(() => site.launchConnections('L1')).toBe(1);
    expect(site.posts[posts]).toEqual({ contentType: 'application/json', body: '{}' });
    expect(await state()).toBe('requested');
    expect(await page.isDisabled('#launch-button')).toBe(true);
    expect(await text('#launch-status')).toMatch(/Request accepted/);
    // Stream open, no launch message yet: the timer has not started.
    expect(await page.getAttribute('#launch-timer', 'data-started')).toBe('false');
    expect(await text('#launch-timer')).toBe('0:00.0');
    expect(await classes('#region-fra')).toContain('own');

    site.launch('L1', view('L1', 'requested', 1, 0));
    await page.waitForSelector('#launch-timer[data-running="true"]');
    await expect.poll(() => text('#launch-timer')).not.toBe('0:00.0');
    expect(await text('#launch-timer')).toMatch(/^\d:\d\d\.\d$/);

    site.launch('L1', view('L1', 'created', 2, 300));
    await expect.poll(state).toBe('created');
    expect(await text('#launch-status')).toBe('Machine m-L1 created in Frankfurt. Booting it up…');

    // The stream drops: EventSource reconnects with Last-Event-ID and the timer carries on.
    await page.waitForFunction(
      () => (document.getElementById('launch-timer')?.textContent ?? '') >= '0:00.3',
    );
    const beforeDrop = await text('#launch-timer');
    site.dropLaunch('L1');
    await expect.poll(() => site.launchConnections('L1'), { timeout: 5_000 }).toBe(1);
    expect(site.lastEventIds('L1')).toContain('2');
    site.launch('L1', view('L1', 'requested', 1, 0)); // a replay of old news changes nothing
    site.launch('L1', view('L1', 'started', 3, 600));
    await expect.poll(state).toBe('started');
    expect((await text('#launch-timer')) >= beforeDrop).toBe(true);
    expect(await text('#launch-status')).toBe(
      'Machine m-L1 is running. Waiting for it to say hello…',
    );

    const url = `${site.url}/machine?instance=m-L1`;
    const sentReady = Date.now();
    site.launch('L1', view('L1', 'ready', 4, 2_345, { url }));
    await expect.poll(state).toBe('ready');
    expect(await text('#launch-timer')).toBe('0:02.3');
    expect(await page.getAttribute('#launch-timer', 'data-running')).toBe('false');
    expect(await text('#launch-status')).toBe('Machine m-L1 is ready! Taking you there…');
    expect(cspViolations).toEqual([]);
    await page.waitForURL(url);
    expect(Date.now() - sentReady).toBeGreaterThanOrEqual(TIMING.redirectDelayMs - 50); // the pause before leaving
    expect(await page.textContent('#arrived')).toBe('You reached the machine');
    expect(site.launchConnections('L1')).toBe(0); // the launch stream was closed
  });

  it('a refused launch shows the server’s words and resets after the failure delay', async () => {
    await open('/');
    site.replyToLaunch({
      status: 429,
      body: {
        statusCode: 429,
        code: 'RATE_LIMITED',
        error: 'Too Many Requests',
        message: 'Easy there: one launch at a time.',
      },
    });
    await page.click('#launch-button');
    await expect.poll(state).toBe('failed');
    expect(await text('#launch-status')).toBe('Launch failed: Easy there: one launch at a time.');
    expect(await page.isDisabled('#launch-button')).toBe(true);
    expect(await page.getAttribute('#launch-timer', 'data-started')).toBe('false');
    await expect.poll(state, { timeout: 5_000 }).toBe('idle');
    expect(await page.isDisabled('#launch-button')).toBe(false);
    expect(await text('#launch-status')).toBe('Press the button to start a machine.');
  });

  it('a failed launch names the reason in words, stops the timer, closes its stream, and resets', async () => {
    await open('/');
    site.replyToLaunch(accepted('L2'));
    await page.click('#launch-button');
    await expect.poll(() => site.launchConnections('L2')).toBe(1);
    site.launch('L2', view('L2', 'created', 1, 200));
    await page.waitForSelector('#launch-timer[data-running="true"]');
    site.launch(
      'L2',
      view('L2', 'failed', 2, 1_500, { reason: 'capacity', message: 'server words' }),
    );
    await expect.poll(state).toBe('failed');
    expect(await text('#launch-status')).toBe(`Launch failed: ${FAILURE_WORDS.capacity}`);
    expect(await text('#launch-timer')).toBe('0:01.5');
    expect(await page.getAttribute('#launch-timer', 'data-running')).toBe('false');
    expect(await classes('#region-fra')).not.toContain('own');
    await expect.poll(() => site.launchConnections('L2')).toBe(0);
    await expect.poll(state, { timeout: 5_000 }).toBe('idle');
    expect(await text('#launch-timer')).toBe('0:00.0');
  });

  it('dashboard: a launch per region without redirect, live machine list, hostile ids stay text', async () => {
    await open('/dash');
    expect(await page.$$eval('form.tile-form', (f) => f.length)).toBe(35);
    site.replyToLaunch(accepted('D1', 'nrt'));
    await page.click('form[data-region="nrt"] button');
    await expect.poll(() => site.launchConnections('D1')).toBe(1);
    expect(JSON.parse(site.posts.at(-1)!.body)).toEqual({ region: 'nrt' });
    const tileButton = 'form[data-region="nrt"] button';
    expect(await page.textContent(`${tileButton} .tile-label`)).toBe('Launching…');
    expect(await page.isDisabled(tileButton)).toBe(true);
    expect(await page.isDisabled('form[data-region="fra"] button')).toBe(false);
    site.launch('D1', view('D1', 'created', 1, 400, { region: 'nrt', source: 'dash' }));
    await expect.poll(() => classes('#region-nrt')).toContain('own');
    site.launch(
      'D1',
      view('D1', 'ready', 2, 3_100, {
        region: 'nrt',
        source: 'dash',
        url: `${site.url}/machine?instance=m-D1`,
      }),
    );
    await expect
      .poll(() => page.textContent(`${tileButton} .tile-label`))
      .toBe('Launched in 0:03.1');
    expect(await page.textContent('#dash-announcer')).toMatch(/^Tokyo: Machine m-D1 is ready/);

    site.fleet({
      event: 'fleet',
      data: snapshot([
        machine('m-D1', 'nrt', { source: 'dash' }),
        machine('"><img id=pwned src=x>', 'zzz'),
      ]),
    });
    await expect.poll(() => page.$$eval('#machine-rows tr', (r) => r.length)).toBe(2);
    expect(await page.getAttribute('#machine-rows tr[data-machine="m-D1"] a', 'href')).toBe(
      `${site.url}/machine?instance=m-D1`,
    );
    expect(await page.$('#pwned')).toBeNull();
    expect(await page.getAttribute('tr[data-machine^="\\""] a', 'href')).toBe(
      `${site.url}/machine?instance=${encodeURIComponent('"><img id=pwned src=x>')}`,
    );
    expect(await page.textContent('[data-tile="nrt"] .tile-count')).toBe('1 live');
    expect(await page.textContent('#machine-total')).toBe('2');
    site.fleet({ event: 'capacity', data: { live: 2, limit: 8 } });
    await expect.poll(() => page.textContent('#cap-live')).toBe('2');
    // No redirect on the dashboard: the tile goes back to idle after the success delay, and we
    // are still here (that delay is three times the redirect delay).
    await expect
      .poll(() => page.getAttribute(tileButton, 'data-state'), { timeout: 5_000 })
      .toBe('idle');
    expect(new URL(page.url()).pathname).toBe('/dash');
    expect(await page.isDisabled(tileButton)).toBe(false);
    expect(cspViolations).toEqual([]);
  });

  it('without JavaScript the launch button is a plain form post', async () => {
    const ctx = await browser.newContext({ javaScriptEnabled: false });
    const p = await ctx.newPage();
    await p.goto(`${site.url}/`);
    site.replyToLaunch({ status: 303, location: '/launches/L-nojs' });
    await p.click('#launch-button');
    await p.waitForURL(`${site.url}/launches/L-nojs`);
    expect(site.posts.at(-1)?.contentType).toBe('application/x-www-form-urlencoded');
    expect(await p.textContent('h1')).toBe('Starting your machine…');
    expect(await p.getAttribute('meta[http-equiv="refresh"]', 'content')).toBe('1');
    await ctx.close();
  });

  const variants = [
    { name: 'landing-light', path: '/', colorScheme: 'light', width: 1280, height: 900 },
    { name: 'landing-dark', path: '/', colorScheme: 'dark', width: 1280, height: 900 },
    { name: 'landing-phone-light', path: '/', colorScheme: 'light', width: 390, height: 844 },
    { name: 'landing-phone-dark', path: '/', colorScheme: 'dark', width: 390, height: 844 },
    { name: 'dash-light', path: '/dash', colorScheme: 'light', width: 1280, height: 900 },
    { name: 'dash-dark', path: '/dash', colorScheme: 'dark', width: 1280, height: 900 },
    { name: 'dash-phone-dark', path: '/dash', colorScheme: 'dark', width: 390, height: 844 },
  ] as const;
  for (const v of variants) {
    it(`screenshot: ${v.name}`, async () => {
      initialFleet = snapshot([
        machine('m1', 'nrt'),
        machine('m2', 'nrt'),
        machine('m3', 'gru'),
        machine('m4', 'syd'),
        machine('m5', 'ams'),
      ]);
      const ctx = await browser.newContext({
        viewport: { width: v.width, height: v.height },
        colorScheme: v.colorScheme,
        reducedMotion: 'reduce',
        deviceScaleFactor: v.width < 500 ? 2 : 1,
      });
      const p = await ctx.newPage();
      await open(v.path, p);
      await p.screenshot({
        path: `${SHOTS}/${v.name}.png`,
        fullPage: true,
        animations: 'disabled',
      });
      await ctx.close();
    });
  }

  it('screenshot: a launch in flight (busy button, own machine marked)', async () => {
    const ctx = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      colorScheme: 'dark',
      reducedMotion: 'reduce',
    });
    const p = await ctx.newPage();
    await open('/', p);
    site.replyToLaunch(accepted('S1'));
    await p.click('#launch-button');
    await expect.poll(() => site.launchConnections('S1')).toBe(1);
    site.launch('S1', view('S1', 'started', 1, 1_800));
    await p.waitForSelector('#launch-button[data-state="started"]');
    await p.screenshot({
      path: `${SHOTS}/landing-launching-dark.png`,
      fullPage: true,
      animations: 'disabled',
    });
    await ctx.close();
  });
});
