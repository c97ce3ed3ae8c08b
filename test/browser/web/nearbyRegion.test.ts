/**
 * A full region in Chromium, through the whole local platform: the emulator says Amsterdam (the
 * stack's region, where the button launches) and its nearest region are full, so the launch goes
 * to the next nearest by great-circle distance. The visitor's panel says where the machine went,
 * the map shows it there, and the launch's own page (no JavaScript) says the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { cityName, nearestRegions } from '../../../src/shared/regions.js';
import { placementSentence } from '../../../src/where/ui/launchTimes.js';
import type { LaunchView } from '../../../src/where/wire.js';
import { CHROMIUM, needs } from '../../support/require.js';
import { startStack, type Stack } from '../../support/stack.js';

const hasChromium = needs('Chromium at /usr/bin/chromium (apt-get install chromium)', CHROMIUM);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

describe.skipIf(!hasChromium)('a full region, in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  beforeAll(async () => {
    stack = await startStack({ WM_COOLDOWN_MS: '0', WM_AUTOSPAWN: 'off' });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it(
    'sends the machine to the nearest region with room and tells the visitor where',
    { timeout: 120_000 },
    async () => {
      const [nearest, next] = nearestRegions('ams', 2) as [string, string];
      const faults = await fetch(`${stack.flyUrl}/__flylocal/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.flyToken}` },
        body: JSON.stringify({ capacityRegions: ['ams', nearest] }),
      });
      expect(faults.status).toBe(200);

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      // Hold the redirect to the machine back, so the panel stays in view.
      await page.route(
        (url) => url.hostname.startsWith('useless-machine.'),
        (route) => route.fulfill({ status: 204 }),
      );
      await page.goto(stack.url);
      await page.waitForSelector('body[data-fleet="open"]');
      const accepted = page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/launches',
      );
      await page.locator('#launch-button').click();
      const { launchId } = (await (await accepted).json()) as { launchId: string };

      const view = async () =>
        (await (await fetch(`${stack.url}/launches/${launchId}`)).json()) as LaunchView;
      await expect.poll(async () => (await view()).status, { timeout: 30_000 }).toBe('ready');
      const v = await view();
      expect(v.region).toBe('ams');
      expect(v.placedIn).toBe(next);
      expect(v.fullRegions).toEqual(['ams', nearest]);

      // The panel says it in words, live over the launch's stream.
      const expected = `${cityName('ams')} and ${cityName(nearest)} are full — your machine is in ${cityName(next)}.`;
      expect(placementSentence(v, cityName)).toBe(expected);
      const placement = page.locator('#launch-placement');
      await expect.poll(() => placement.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await placement.textContent()).toBe(expected);
      // The map shows the machine where it is, not where it was asked for.
      await expect
        .poll(() => page.locator(`#region-${next} title`).textContent(), { timeout: 10_000 })
        .toContain('1 Useless Machine running');
      expect(await page.locator('#region-ams title').textContent()).toContain('no machines');

      // The launch's own page, without JavaScript, says the same.
      const plain = await browser.newPage({ javaScriptEnabled: false });
      await plain.goto(`${stack.url}/launches/${launchId}?from=machine`);
      expect(await plain.locator('main .placement').textContent()).toBe(expected);
      await plain.close();
      await page.close();
    },
  );

  it(
    'fails the launch with words a visitor understands when every region tried is full',
    { timeout: 60_000 },
    async () => {
      await fetch(`${stack.flyUrl}/__flylocal/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.flyToken}` },
        body: JSON.stringify({ capacityRegions: ['ams', ...nearestRegions('ams', 2)] }),
      });
      const res = await fetch(`${stack.url}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: stack.url },
        body: JSON.stringify({}),
      });
      expect(res.status).toBe(202);
      const { launchId } = (await res.json()) as { launchId: string };
      const view = async () =>
        (await (await fetch(`${stack.url}/launches/${launchId}`)).json()) as LaunchView;
      await expect.poll(async () => (await view()).status, { timeout: 30_000 }).toBe('failed');
      const v = await view();
      expect(v.reason).toBe('noCapacity');
      expect(v.fullRegions).toEqual(['ams', ...nearestRegions('ams', 2)]);
      const page = await browser.newPage({ javaScriptEnabled: false });
      await page.goto(`${stack.url}/launches/${launchId}`);
      expect(await page.locator('h1').textContent()).toBe('The launch failed');
      expect(await page.locator('main [role="status"]').textContent()).toContain(
        'full in your region',
      );
      await page.close();
    },
  );
});
