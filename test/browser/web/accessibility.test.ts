/**
 * Every page a visitor or an operator can reach passes axe-core in Chromium with no serious or
 * critical violation, with JavaScript and (where the page works without it) without: the map, a
 * launch's page, the dashboard, the Useless Machine's own page and its goodbye page.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type { LaunchView } from '../../../src/where/wire.js';
import { CHROMIUM, needs } from '../../support/require.js';
import { startStack, type Stack } from '../../support/stack.js';

const hasChromium = needs('Chromium at /usr/bin/chromium (apt-get install chromium)', CHROMIUM);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];
const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/** The serious and critical violations axe finds on a page, as short readable lines. */
async function violations(
  ctx: BrowserContext,
  url: string,
  opts: { script: boolean },
): Promise<string[]> {
  const page = await ctx.newPage();
  try {
    if (!opts.script) {
      // The page as a browser without JavaScript shows it: the served HTML with its scripts
      // removed and its <noscript> parts shown (axe itself still needs the page's JavaScript).
      const plain = await ctx.browser()!.newContext({ javaScriptEnabled: false });
      const served = await plain.newPage();
      const first = await served.goto(url, { waitUntil: 'load' });
      expect(first?.status(), url).toBeLessThan(400);
      const raw = await served.content();
      await plain.close();
      const html = raw
        .replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '')
        .replace(/<\/?noscript>/gi, '');
      await page.route(url, (r) =>
        r.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }),
      );
    }
    const res = await page.goto(url, { waitUntil: 'load' });
    expect(res?.status(), url).toBeLessThan(400);
    // Let the scripts render the live parts (map dots, the button's state) before the audit.
    await page.waitForTimeout(300);
    // The pages' CSP (rightly) refuses injected scripts: the context bypasses it for the audit.
    const found = await page.evaluate<Violation[]>(
      `${AXE_SOURCE}\n;axe.run({ resultTypes: ['violations'] }).then((r) => r.violations)`,
    );
    return found
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v) => `${url}: ${v.id} (${v.impact}) ${v.help} at ${JSON.stringify(v.nodes[0]?.target)}`,
      );
  } finally {
    await page.close();
  }
}

describe.skipIf(!hasChromium)('accessibility (axe-core in Chromium)', () => {
  let stack: Stack;
  let browser: Browser;
  let launch: LaunchView;
  beforeAll(async () => {
    stack = await startStack({ WM_COOLDOWN_MS: '0', WM_AUTOSPAWN: 'off' });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS });
    const res = await fetch(`${stack.url}/launches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: stack.url },
      body: '{}',
    });
    expect(res.status).toBe(202);
    const { launchId } = (await res.json()) as { launchId: string };
    const view = async () =>
      (await (await fetch(`${stack.url}/launches/${launchId}`)).json()) as LaunchView;
    const until = Date.now() + 30_000;
    while ((await view()).status !== 'ready' && Date.now() < until)
      await new Promise((r) => setTimeout(r, 200));
    launch = await view();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  // Without JavaScript first: the machine's page with its script plays the animation, after which
  // the machine switches itself off.
  it('finds nothing serious without JavaScript either', { timeout: 60_000 }, async () => {
    const ctx = await browser.newContext({ bypassCSP: true });
    const found = [];
    for (const url of [
      `${stack.url}/`,
      `${stack.url}/launches/${launch.launchId}?from=machine`,
      launch.url!,
    ])
      found.push(...(await violations(ctx, url, { script: false })));
    await ctx.close();
    expect(found).toEqual([]);
  });

  it('finds nothing serious on any page, with JavaScript', { timeout: 60_000 }, async () => {
    const ctx = await browser.newContext({ bypassCSP: true });
    const pages = [
      `${stack.url}/`,
      `${stack.url}/launches/${launch.launchId}?from=machine`,
      `${stack.url}/dash`,
      launch.url!,
    ];
    const found = [];
    for (const url of pages) found.push(...(await violations(ctx, url, { script: true })));
    await ctx.close();
    expect(found).toEqual([]);
  });
});
