/**
 * Browser script of the machine page: plays the sequence over the server-rendered first frame,
 * then shows the final state from data already on the page (the VM may be gone by then), and tells
 * the VM when this viewer is done (fetch, or a beacon if the page goes away first).
 */
import { FRAMES } from '../frames.js';
import { SEQUENCE, type Lights } from '../sequence.js';
import type { PageData } from '../page.js';

function byId<T extends HTMLElement>(id: string, type: new () => T): T | undefined {
  const el = document.getElementById(id);
  return el instanceof type ? el : undefined;
}

function readData(): PageData | undefined {
  const el = document.getElementById('wm-data');
  if (!el?.textContent) return undefined;
  try {
    return JSON.parse(el.textContent) as PageData;
  } catch {
    return undefined;
  }
}

function main(): void {
  const data = readData();
  const root = byId('machine', HTMLElement);
  const art = byId('art', HTMLPreElement);
  const heading = byId('heading', HTMLHeadingElement);
  const line = byId('line', HTMLParagraphElement);
  const home = byId('home', HTMLParagraphElement);
  if (!data || !root || !art || !heading || !line || !home) return;

  let reported = false;
  let beat: ReturnType<typeof setInterval> | undefined;

  const report = (how: 'fetch' | 'beacon'): void => {
    if (reported || !data.viewer) return;
    reported = true;
    if (beat !== undefined) clearInterval(beat);
    const url = data.viewer.doneUrl;
    if (how === 'beacon' && navigator.sendBeacon(url)) return;
    // keepalive lets the request finish even if the page is being unloaded.
    fetch(url, { method: 'POST', keepalive: true, credentials: 'same-origin' }).catch(
      () => undefined,
    );
  };

  if (data.viewer) {
    const { beatUrl, beatEveryMs } = data.viewer;
    beat = setInterval(() => {
      fetch(beatUrl, { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
    }, beatEveryMs);
  }
  // Leaving before the end still counts as done: this tab no longer needs the machine.
  addEventListener('pagehide', () => report('beacon'));

  const setLights = (lights: Lights): void => {
    root.classList.toggle('on', lights === 'on');
    root.classList.toggle('off', lights === 'off');
  };

  const say = (h: string, l: string): void => {
    heading.textContent = h;
    line.textContent = l;
  };

  let lights: Lights = 'on';
  let i = 1;
  const next = (): void => {
    const step = SEQUENCE[i];
    if (!step) return;
    art.textContent = FRAMES[step.frame] ?? art.textContent;
    if (step.lights !== lights) {
      lights = step.lights;
      setLights(lights);
      if (lights === 'off') say(data.texts.offHeading, data.texts.offLine);
    }
    i++;
    const following = SEQUENCE[i];
    if (following) {
      setTimeout(next, following.after);
      return;
    }
    // The end: everything needed is already here, so this state outlives the VM.
    say(data.texts.goneHeading, data.texts.goneLine);
    home.hidden = false;
    report('fetch');
  };

  const first = SEQUENCE[1];
  if (first) setTimeout(next, first.after);
}

main();
