/**
 * The machine page in a real browser: the sequence plays, the lights go off, the final state is
 * drawn client-side and outlives the VM, which switches off once this viewer is done. Also without JS.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { buildApp, type UselessMachine } from '../../../src/useless/app.js';
import { FRAMES } from '../../../src/useless/frames.js';
import { CHROMIUM, needs } from '../../support/require.js';
import { CallbackReceiver, SELF, aConfig, exitRecorder } from '../../support/useless.js';

const ok = needs('Chromium (/usr/bin/chromium) for the browser test of the machine page', CHROMIUM);

describe.skipIf(!ok)('machine page in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM! });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function machine(): Promise<{
    m: UselessMachine;
    url: string;
    codes: number[];
    receiver: CallbackReceiver;
    timers: SystemTimers;
  }> {
    const receiver = new CallbackReceiver();
    const callbackUrl = await receiver.listen();
    const timers = new SystemTimers();
    const { exit, codes } = exitRecorder();
    const m = buildApp({
      config: aConfig({ WM_CALLBACK_URL: callbackUrl, WM_TTL_MS: '600000' }),
      log: silentLogger(),
      clock: systemClock,
      timers,
      fetch: globalThis.fetch,
      exit,
      script: readFileSync('dist/web/machine.js', 'utf8'),
    });
    await m.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;
    await m.start(base);
    return { m, url: `${base}/machine?instance=${SELF}`, codes, receiver, timers };
  }

  it('plays the sequence, turns the lights off, ends on the final state, and the VM then switches off', async () => {
    const { m, url, codes, receiver, timers } = await machine();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    try {
      await page.goto(url);
      expect(await page.locator('#art').textContent()).toBe(FRAMES[0]);
      expect(await page.locator('#machine').getAttribute('class')).toContain('on');
      await page.locator('#machine.off').waitFor({ timeout: 10_000 });
      await page
        .locator('#heading', { hasText: 'This machine is gone' })
        .waitFor({ timeout: 10_000 });
      expect(await page.locator('#art').textContent()).toBe(FRAMES[FRAMES.length - 1]);
      expect(await page.locator('#home a').isVisible()).toBe(true);
      expect(await page.locator('#home a').getAttribute('href')).toBe('http://localhost:8080/');
      expect(await page.locator('#words').getAttribute('aria-live')).toBe('polite');

      await expect.poll(() => codes, { timeout: 10_000 }).toEqual([0]);
      expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'finished' });
      // The VM is gone; the page still says so.
      expect(m.app.server.listening).toBe(false);
      expect(await page.locator('#heading').textContent()).toBe('This machine is gone');
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      await m.app.close();
      timers.clearAll();
      await receiver.close();
    }
  });

  it('without JavaScript shows the first frame, the words and the way home', async () => {
    const { m, url, receiver, timers } = await machine();
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    try {
      await page.goto(url);
      expect(await page.locator('#art').textContent()).toBe(FRAMES[0]);
      expect(await page.locator('#heading').textContent()).toBe('You started a Useless Machine');
      expect(await page.locator('#line').textContent()).toBe(
        `This is Fly Machine ${SELF} in Amsterdam.`,
      );
      expect(await page.locator('noscript a, #home a').first().getAttribute('href')).toBe(
        'http://localhost:8080/',
      );
    } finally {
      await context.close();
      await m.app.close();
      timers.clearAll();
      await receiver.close();
    }
  });
});
