/**
 * The real journey in a real browser through the whole local platform (`npm start`'s stack):
 * click, the timer runs, the browser lands on a real VM process, the animation plays, the VM stops
 * and is destroyed, and its dot leaves the map of a second open page. Then the capacity failure
 * and its reset. Screenshots go to test-results/.
 */
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, needs } from '../../support/require.js';
import { startStack, type Stack } from '../../support/stack.js';

const haveChromium = needs('Chromium at /usr/bin/chromium (apt-get install chromium)', CHROMIUM);
const shots = 'test-results/e2e';

async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM!,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

const liveRegions = (page: Page) => page.locator('#region-map g.region.live').count();

describe.skipIf(!haveChromium)('the journey, in Chromium, through the local platform', () => {
  let stack: Stack;
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    stack = await startStack({ WM_COOLDOWN_MS: '0', WM_AUTOSPAWN: 'off' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it(
    'launches a VM, sends the browser to it, plays the animation, and the VM leaves every map',
    { timeout: 120_000 },
    async () => {
      const watcher = await browser.newPage();
      await watcher.goto(stack.url);
      const visitor = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await visitor.goto(stack.url);
      await visitor.screenshot({ path: `${shots}/landing.png`, fullPage: true });
      expect(await liveRegions(watcher)).toBe(0);
      await expect
        .poll(() => visitor.locator('#launch-button').getAttribute('data-state'))
        .toBe('idle');

      const navigated = visitor.waitForURL(/useless-machine\.localhost/, { timeout: 30_000 });
      await visitor.locator('#launch-button').click();
      // The timer starts with the first launch event, and the status is announced.
      await expect
        .poll(() => visitor.locator('#launch-timer').getAttribute('data-running'), {
          timeout: 10_000,
        })
        .toBe('true');
      await expect
        .poll(() => visitor.locator('#launch-status').textContent())
        .not.toBe('Press the button to start a machine.');
      // The other page sees the new machine on its map.
      await expect.poll(() => liveRegions(watcher), { timeout: 20_000 }).toBe(1);
      await watcher.screenshot({ path: `${shots}/watcher-with-machine.png` });

      await navigated;
      const url = new URL(visitor.url());
      expect(url.pathname).toBe('/machine');
      expect(url.searchParams.get('instance')).toMatch(/^[0-9a-f]{14}$/);
      await expect
        .poll(() => visitor.locator('#heading').textContent())
        .toBe('You started a Useless Machine');
      await visitor.screenshot({ path: `${shots}/vm-start.png` });
      // The sequence ends with the final state rendered in the page itself.
      await expect
        .poll(() => visitor.locator('#heading').textContent(), { timeout: 20_000 })
        .toBe('This machine is gone');
      await visitor.screenshot({ path: `${shots}/vm-end.png` });
      expect(await visitor.locator('#home').isVisible()).toBe(true);

      // The VM stops itself and is destroyed: its dot leaves the other page's map.
      await expect.poll(() => liveRegions(watcher), { timeout: 30_000 }).toBe(0);
      await watcher.close();
      await visitor.close();
    },
  );

  it(
    'shows the capacity failure in words and resets the button',
    { timeout: 120_000 },
    async () => {
      await stack.stop();
      stack = await startStack({ WM_MAX_MACHINES: '1', WM_COOLDOWN_MS: '0', WM_AUTOSPAWN: 'off' });
      // Someone else holds the only slot.
      const hold = await fetch(`${stack.url}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: stack.url },
        body: '{}',
      });
      expect(hold.status).toBe(202);
      const page = await browser.newPage();
      await page.goto(stack.url);
      await page.locator('#launch-button').click();
      await expect
        .poll(() => page.locator('#launch-button').getAttribute('data-state'), { timeout: 10_000 })
        .toBe('failed');
      const words = (await page.locator('#launch-status').textContent()) ?? '';
      expect(words.toLowerCase()).toContain('slot');
      expect(await page.locator('#launch-timer').getAttribute('data-running')).toBe('false');
      await page.screenshot({ path: `${shots}/capacity-failed.png` });
      await expect
        .poll(() => page.locator('#launch-button').getAttribute('data-state'), { timeout: 15_000 })
        .toBe('idle');
      await page.close();
    },
  );
});

describe.skipIf(!haveChromium)('the dashboard, in Chromium, through the local platform', () => {
  let stack: Stack;
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    stack = await startStack({ WM_AUTOSPAWN: 'on' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it(
    'launches a machine per region from its tile without leaving the page, and switches the autospawner',
    { timeout: 90_000 },
    async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${stack.url}/dash`);
      for (const region of ['syd', 'gru']) {
        await page.locator(`li[data-tile="${region}"] button.tile-button`).click();
      }
      // (The autospawner, on and with this page as a visitor, may add one of its own in ams.)
      const regions = async () =>
        (
          await page
            .locator('#machine-rows tr[data-machine] td:nth-child(2) code')
            .allTextContents()
        )
          .filter((r) => r !== 'ams')
          .sort();
      await expect.poll(regions, { timeout: 30_000 }).toEqual(['gru', 'syd']);
      expect(new URL(page.url()).pathname).toBe('/dash');
      await expect
        .poll(() => page.locator('li[data-tile="syd"] .tile-count').getAttribute('data-count'))
        .toBe('1');
      await page.screenshot({ path: `${shots}/dash-two-regions.png`, fullPage: true });

      // This page is a visitor: the autospawner panel, refreshed from the server, shows it active.
      const state = () => page.locator('#auto-state').getAttribute('data-state');
      await expect.poll(state, { timeout: 20_000 }).toBe('active');
      // The switch: off, then on again, through its form.

      await page.locator('form[action="/dash/autospawner"] button').click();
      await page.waitForURL(/\/dash$/);
      await expect.poll(state).toBe('off');
      await page.locator('form[action="/dash/autospawner"] button').click();
      await page.waitForURL(/\/dash$/);
      await expect.poll(state).not.toBe('off');
      await page.close();
    },
  );
});
