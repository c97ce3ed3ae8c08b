/**
 * Launch times in Chromium through the whole local platform (emulator, edge proxy, landing app,
 * real VM processes): launches made here, then the map's marker titles, the launch panel and the
 * dashboard's region tiles must tell the times those launches' own facts give (read back with
 * GET /launches/:id), and the machine's page must lead back to its launch's timeline.
 * Screenshots go to test-results/.
 */
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { median } from '../../../src/where/services/launchTimes.js';
import {
  formatSeconds,
  readyTimeSentence,
  timelineItems,
  timelineText,
} from '../../../src/where/ui/launchTimes.js';
import type { LaunchView } from '../../../src/where/wire.js';
import { CHROMIUM, needs } from '../../support/require.js';
import { startStack, type Stack } from '../../support/stack.js';

const hasChromium = needs('Chromium at /usr/bin/chromium (apt-get install chromium)', CHROMIUM);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

/** Click→ready of a launch, from its facts' times as its view lists them. */
function readyMs(v: LaunchView): number {
  const ready = v.timeline?.find((s) => s.step === 'ready');
  expect(ready?.fact).toBe('vm.listening');
  return Date.parse(ready!.at) - Date.parse(v.requestedAt);
}

describe.skipIf(!hasChromium)('launch times in Chromium, through the local platform', () => {
  let stack: Stack;
  let browser: Browser;
  beforeAll(async () => {
    stack = await startStack({
      WM_COOLDOWN_MS: '0',
      WM_AUTOSPAWN: 'off',
      WM_LAUNCHES_PER_MINUTE: '100',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const launchView = async (launchId: string): Promise<LaunchView> =>
    (await (await fetch(`${stack.url}/launches/${launchId}`)).json()) as LaunchView;

  /** Click→ready of every launch this file made, by region: what the typical times are made of. */
  const readyTimes = new Map<string, number[]>();
  const typicalOf = (region: string): string => {
    const times = readyTimes.get(region) ?? [];
    return `typical ${formatSeconds(median(times))} (last ${times.length})`;
  };

  /** Waits until the launch is ready and returns its view. */
  async function ready(launchId: string): Promise<LaunchView> {
    await expect
      .poll(async () => (await launchView(launchId)).status, { timeout: 30_000 })
      .toBe('ready');
    const view = await launchView(launchId);
    readyTimes.set(view.region, [...(readyTimes.get(view.region) ?? []), readyMs(view)]);
    return view;
  }

  /** A launch the way another visitor's page makes one. */
  async function launchElsewhere(region: string): Promise<LaunchView> {
    const res = await fetch(`${stack.url}/launches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: stack.url },
      body: JSON.stringify({ region }),
    });
    expect(res.status).toBe(202);
    return ready(((await res.json()) as { launchId: string }).launchId);
  }

  const title = (page: Page, code: string) => page.locator(`#region-${code} title`).textContent();

  it(
    'the map and the panel show the typical time of the launches made here, and the visitor’s own comparison and timeline',
    { timeout: 150_000 },
    async () => {
      // Two launches in Amsterdam (the stack's region, where the button launches too) and one in Sydney.
      const earlier = [await launchElsewhere('ams'), await launchElsewhere('ams')];
      const sydney = await launchElsewhere('syd');
      const earlierMs = earlier.map(readyMs);

      // First paint, from the server: the marker titles and the panel's line.
      const watcher = await browser.newPage();
      await watcher.goto(stack.url);
      const amsTypical = `typical ${formatSeconds(median(earlierMs))} (last 2)`;
      expect(await title(watcher, 'ams')).toContain(amsTypical);
      expect(await title(watcher, 'syd')).toContain(
        `typical ${formatSeconds(readyMs(sydney))} (last 1)`,
      );
      expect(await title(watcher, 'nrt')).not.toContain('typical');
      expect(await watcher.locator('#launch-typical').textContent()).toBe(
        `Launches in Amsterdam: ${amsTypical}.`,
      );

      // The visitor launches with the button; the redirect to the machine is held back so the
      // panel stays in view (a 204 leaves the page where it is).
      const visitor = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await visitor.route(
        (url) => url.hostname.startsWith('useless-machine.'),
        (route) => route.fulfill({ status: 204 }),
      );
      await visitor.goto(stack.url);
      await visitor.waitForSelector('body[data-fleet="open"]');
      const accepted = visitor.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/launches',
      );
      await visitor.locator('#launch-button').click();
      const { launchId } = (await (await accepted).json()) as { launchId: string };
      const mine = await ready(launchId);
      const mineMs = readyMs(mine);

      // How it compared: the share of this day's other Amsterdam launches that took longer.
      const slower = earlierMs.filter((ms) => ms > mineMs).length;
      expect(mine.readyTime).toEqual({
        ms: mineMs,
        fasterThanPct: Math.floor((100 * slower) / 2),
        of: 2,
      });
      const compare = visitor.locator('#launch-compare');
      await expect.poll(() => compare.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await compare.textContent()).toBe(
        readyTimeSentence(
          { ms: mineMs, fasterThanPct: Math.floor((100 * slower) / 2), of: 2 },
          'Amsterdam',
        ),
      );
      expect(await compare.textContent()).toMatch(
        /^Your machine was ready in \d+\.\d s — faster than \d+ % of launches in Amsterdam today\.$/,
      );

      // Its timeline of facts, each at its time since the click.
      const timeline = visitor.locator('#launch-timeline');
      expect(await timeline.isVisible()).toBe(true);
      const steps = await timeline.locator('li').allTextContents();
      const expected = timelineItems(mine.timeline!, mine.requestedAt);
      expect(steps).toEqual(expected.map((i) => (i.after ? `${i.label} ${i.after}` : i.label)));
      expect(await timeline.getAttribute('data-text')).toMatch(
        /^requested → created \d+\.\d s → started \d+\.\d s → VM listening \d+\.\d s → ready$/,
      );
      expect(await timeline.getAttribute('data-text')).toBe(timelineText(expected));
      expect(await timeline.locator('li[data-fact="vm.listening"] time').textContent()).toBe(
        formatSeconds(mineMs),
      );

      mkdirSync('test-results', { recursive: true });
      await visitor.screenshot({ path: 'test-results/launch-times-panel.png' });

      // The other page's map follows over the fleet stream, without a reload.
      const allMs = [...earlierMs, mineMs];
      await expect
        .poll(() => title(watcher, 'ams'), { timeout: 10_000 })
        .toContain(`typical ${formatSeconds(median(allMs))} (last 3)`);
      await expect
        .poll(() => watcher.locator('#launch-typical').textContent())
        .toBe(`Launches in Amsterdam: typical ${formatSeconds(median(allMs))} (last 3).`);

      // The machine's page leads back to the launch's own page: the same history, no JS needed.
      await visitor.unrouteAll();
      await visitor.goto(mine.url!);
      await visitor.locator('#launch-link a').click();
      await visitor.waitForURL(`${stack.url}/launches/${launchId}?from=machine`);
      expect(await visitor.locator('h1').textContent()).toBe('Your machine is ready');
      expect(await visitor.locator('meta[http-equiv="refresh"]').count()).toBe(0);
      expect(await visitor.locator('main .compare').textContent()).toContain(
        `ready in ${formatSeconds(mineMs)}`,
      );
      expect(await visitor.locator('main ol.timeline li').allTextContents()).toEqual(
        expected.map((i) => (i.after ? `${i.label} ${i.after}` : i.label)),
      );
      await visitor.screenshot({ path: 'test-results/launch-times-page.png' });
      await watcher.close();
      await visitor.close();
    },
  );

  it(
    'the dashboard shows each region’s typical time beside its button, and follows a launch from its tile',
    { timeout: 120_000 },
    async () => {
      await launchElsewhere('syd');
      const dash = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await dash.goto(`${stack.url}/dash`);
      const line = (code: string) =>
        dash.locator(`[data-tile="${code}"] .tile-times`).textContent();

      // First paint, from the server.
      for (const region of readyTimes.keys()) expect(await line(region)).toBe(typicalOf(region));
      expect(await line('nrt')).toBe('no launch timed yet');
      expect(await title(dash, 'syd')).toContain(typicalOf('syd'));
      // The button is described by its region's line.
      expect(
        await dash.locator('form[data-region="syd"] button').getAttribute('aria-describedby'),
      ).toBe('times-syd');

      // A launch from the Sydney tile: its line and marker follow over the fleet stream.
      await dash.waitForSelector('body[data-fleet="open"]');
      const before = readyTimes.get('syd')!.length;
      const accepted = dash.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/dash/launches',
      );
      await dash.locator('form[data-region="syd"] button').click();
      const { launchId } = (await (await accepted).json()) as { launchId: string };
      await ready(launchId);
      expect(readyTimes.get('syd')).toHaveLength(before + 1);
      await expect.poll(() => line('syd'), { timeout: 10_000 }).toBe(typicalOf('syd'));
      await expect.poll(() => title(dash, 'syd'), { timeout: 10_000 }).toContain(typicalOf('syd'));
      expect(await line('nrt')).toBe('no launch timed yet');
      mkdirSync('test-results', { recursive: true });
      await dash
        .locator('ul.tiles')
        .screenshot({ path: 'test-results/launch-times-dashboard.png' });
      await dash.close();
    },
  );
});
