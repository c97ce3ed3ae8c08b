/**
 * Server-rendered HTML for the machine page: the first frame and the words work without JavaScript;
 * the browser script plays the rest from data embedded here, so the final state never needs the VM.
 */
import { FRAMES } from './frames.js';
import { pageTexts, type PageTexts } from './sequence.js';

export const SCRIPT_PATH = '/machine/assets/machine.js';

/** What the browser script reads from the page (`<script type="application/json" id="wm-data">`). */
export interface PageData {
  machineId: string;
  city: string;
  homeUrl: string;
  texts: PageTexts;
  /** Absent when the machine could not take another viewer: the page then just plays. */
  viewer?: { doneUrl: string; beatUrl: string; beatEveryMs: number };
}

/** The Content-Security-Policy every HTML page carries: nothing from anywhere else. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script>` element (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const STYLE = `
:root { color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; background: #050505; color: #cbd5e1;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.machine { width: fit-content; max-width: calc(100vw - 1rem); margin: 1rem auto; padding: 1rem;
  border: 2px solid #525252; border-radius: 0.75rem; transition: background-color 0.2s, color 0.2s; }
.machine.on { background: #240000; color: #f87171; }
.machine.off { background: #0b0b0b; color: #94a3b8; }
.words { min-height: 6.5rem; }
h1 { margin: 0 0 0.4rem; font-size: clamp(1.1rem, 4.5vw, 1.6rem); line-height: 1.25; }
.machine.on h1 { color: #ffb700; }
.machine.off h1 { color: #e2e8f0; }
p { margin: 0 0 0.4rem; font-size: clamp(0.9rem, 3.5vw, 1.05rem); line-height: 1.4; overflow-wrap: anywhere; }
.home a { color: #bbf7d0; font-weight: bold; }
.home a:focus-visible { outline: 2px solid #bbf7d0; outline-offset: 2px; }
pre { margin: 1rem 0 0; font-weight: 900; line-height: 1.15; overflow-x: auto;
  font-size: clamp(4px, calc((100vw - 3rem) / 52), 12px); }
[hidden] { display: none !important; }
`;

function shell(title: string, body: string, extraHead = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
${extraHead}</head>
<body>
${body}
</body>
</html>
`;
}

/**
 * The launch's own page on the landing app (its timeline of facts and how fast it was);
 * `from=machine` keeps that page from forwarding the visitor straight back here.
 */
export function launchPageUrl(homeUrl: string, launchId: string): string | undefined {
  try {
    return new URL(`/launches/${encodeURIComponent(launchId)}?from=machine`, homeUrl).href;
  } catch {
    return undefined;
  }
}

function launchLink(url: string | undefined): string {
  return url
    ? `<p id="launch-link" class="home"><a href="${escapeHtml(url)}">How this launch went, fact by fact</a></p>\n`
    : '';
}

export interface MachinePageInput {
  machineId: string;
  city: string;
  homeUrl: string;
  /** The launch's page on the landing app (launchPageUrl); absent: no link. */
  launchUrl?: string | undefined;
  viewer?: PageData['viewer'];
  /** Whether the browser bundle exists; without it the page is the no-JS page for everyone. */
  withScript: boolean;
}

/** The machine page with the lights on and the first frame; the script takes it from there. */
export function machinePage(input: MachinePageInput): string {
  const texts = pageTexts(input.machineId, input.city);
  const data: PageData = {
    machineId: input.machineId,
    city: input.city,
    homeUrl: input.homeUrl,
    texts,
  };
  if (input.viewer) data.viewer = input.viewer;
  const script = input.withScript
    ? `<script type="application/json" id="wm-data">${scriptJson(data)}</script>
<script type="module" src="${SCRIPT_PATH}?instance=${encodeURIComponent(input.machineId)}"></script>`
    : '';
  const body = `<main id="machine" class="machine on">
<div id="words" class="words" role="status" aria-live="polite">
<h1 id="heading">${escapeHtml(texts.onHeading)}</h1>
<p id="line">${escapeHtml(texts.onLine)}</p>
<p id="home" class="home"${input.withScript ? ' hidden' : ''}><a href="${escapeHtml(input.homeUrl)}">${escapeHtml(texts.homeLink)}</a></p>
</div>
<pre id="art" role="img" aria-label="ASCII drawing: a box with a toggle switch on top">${escapeHtml(FRAMES[0] ?? '')}</pre>
${launchLink(input.launchUrl)}${input.withScript ? `<noscript><p class="home"><a href="${escapeHtml(input.homeUrl)}">${escapeHtml(texts.homeLink)}</a></p></noscript>` : ''}
</main>`;
  return shell(`Useless Machine ${input.machineId}`, body, script);
}

/** A machine that is already switching off: straight to the final state. */
export function gonePage(input: {
  machineId: string;
  city: string;
  homeUrl: string;
  launchUrl?: string | undefined;
}): string {
  const texts = pageTexts(input.machineId, input.city);
  const last = FRAMES[FRAMES.length - 1] ?? '';
  const body = `<main id="machine" class="machine off">
<div id="words" class="words" role="status">
<h1 id="heading">${escapeHtml(texts.goneHeading)}</h1>
<p id="line">${escapeHtml(texts.goneLine)}</p>
<p id="home" class="home"><a href="${escapeHtml(input.homeUrl)}">${escapeHtml(texts.homeLink)}</a></p>
</div>
<pre id="art" role="img" aria-label="ASCII drawing: a closed box, its switch off">${escapeHtml(last)}</pre>
${launchLink(input.launchUrl)}</main>`;
  return shell('Useless Machine: gone', body);
}

/** No machine named: say how to get one instead of handing out somebody else's. */
export function noMachinePage(input: { homeUrl: string }): string {
  const body = `<main id="machine" class="machine off">
<div id="words" class="words" role="status">
<h1 id="heading">Which machine?</h1>
<p id="line">Useless Machines are opened by a link that names them. Start your own from the map.</p>
<p id="home" class="home"><a href="${escapeHtml(input.homeUrl)}">Back to the map</a></p>
</div>
</main>`;
  return shell('Useless Machine: not found', body);
}
