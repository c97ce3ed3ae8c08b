/**
 * The visitor's page: a title, one big launch button (a real form, so it works without
 * JavaScript), a status line with a timer, where the visitor is, where machines run, and the map.
 */
import { findRegion, cityName } from '../../shared/regions.js';
import { FAILURE_WORDS, type FleetSnapshot, type LaunchTimesView } from '../wire.js';
import { DEFAULT_TIMING, type PageConfig, type Timing } from '../ui/config.js';
import {
  capacityText,
  chipCount,
  formatElapsed,
  NO_MACHINES_TEXT,
  regionCounts,
  type RegionCount,
} from '../ui/format.js';
import { idleLaunchButton } from '../ui/launchButton.view.js';
import { markup, type SafeHtml } from './html.js';
import { renderDocument } from './layout.js';
import { renderMap } from './map.js';
import { renderLaunchTimesPanel } from './launchTimes.js';

export interface PageAssets {
  /** URL of the page's ES module (the built `dist/web/app.js` or `dash.js`). */
  readonly appJs: string;
  /** URL of the stylesheet (PAGE_CSS served as a file); inlined when absent. */
  readonly css?: string | undefined;
}

export interface LandingModel {
  /** The `Fly-Region` the request came through; undefined when there was none (local runs). */
  readonly edgeRegion: string | undefined;
  /** The fleet at render time, capacity included; the page keeps it live over `/events`. */
  readonly fleet: FleetSnapshot;
  readonly assets: PageAssets;
  /** CSP nonce for the inline style, config island and script tags. */
  readonly nonce?: string | undefined;
  /** Paths the page talks to (defaults `/launches` and `/events`). */
  readonly endpoints?: Partial<PageConfig['endpoints']>;
  /** Button reset and redirect delays (defaults 5 s, 20 s, 0.5 s); tests shorten them. */
  readonly timing?: Partial<Timing>;
  /** Typical launch times per region (the page keeps them live over `/events`). */
  readonly launchTimes?: LaunchTimesView | undefined;
  /** Where the button's launch goes when the visitor does not choose (the edge, else ours). */
  readonly launchRegion?: string | undefined;
}

/** Machine-region chips (shared with the dashboard): "Frankfurt fra ×2", or "none right now". */
export function renderRegionChips(counts: readonly RegionCount[], id: string): SafeHtml {
  const items =
    counts.length === 0
      ? markup`<li class="chip none">${NO_MACHINES_TEXT}</li>`
      : counts.map((c) => {
          const count = chipCount(c.count);
          return markup`<li class="chip" data-region="${c.code}">${findRegion(c.code)?.city ?? c.code} <span class="code">${c.code}</span>${count ? markup` <span class="count">${count}</span>` : ''}</li>`;
        });
  return markup`<ul class="chips" id="${id}" aria-live="off">${items}</ul>`;
}

/** "Your Fly.io edge region is …", with sensible words when there is no header or an unknown code. */
export function renderEdgeSentence(edgeRegion: string | undefined): SafeHtml {
  const region = findRegion(edgeRegion);
  if (region) {
    return markup`Your Fly.io edge region is <strong>${region.city}</strong> <code>${region.code}</code>.`;
  }
  if (!edgeRegion) {
    return markup`Your request did not pass through a Fly.io edge, so you are probably on <strong>${cityName(undefined)}</strong>: the machine starts wherever this server runs.`;
  }
  return markup`Your Fly.io edge region is <strong>${cityName(edgeRegion)}</strong>, which is not on our map yet.`;
}

export function pageConfig(
  endpoints: Partial<PageConfig['endpoints']> | undefined,
  timing: Partial<Timing> | undefined,
  extra: Partial<PageConfig> = {},
): PageConfig {
  return {
    endpoints: {
      launches: endpoints?.launches ?? '/launches',
      events: endpoints?.events ?? '/events',
    },
    timing: { ...DEFAULT_TIMING, ...timing },
    failureWords: FAILURE_WORDS,
    ...extra,
  };
}

export function renderLandingPage(model: LandingModel): string {
  const counts = regionCounts(model.fleet.machines.map((m) => m.region));
  const edge = findRegion(model.edgeRegion);
  const launches = model.endpoints?.launches ?? '/launches';
  const button = idleLaunchButton('page');
  const body = markup`<div class="wrap">
<header class="brand"><a href="/">WhereMachines</a></header>
<main>
<div class="top">
<section class="hero" aria-labelledby="page-title">
<h1 id="page-title">Start a <em>useless machine</em> somewhere in the cloud</h1>
<p class="lede">One press boots a brand-new little virtual machine in the Fly.io region nearest to you. It does one pointless, cheerful thing for you, then switches itself off for good.</p>
</section>
<section class="console panel" aria-label="Launch">
<form class="launch" id="launch-form" method="post" action="${launches}">
<button class="big-button" id="launch-button" type="submit" data-state="${button.state}" aria-describedby="launch-status"><span class="label" id="launch-label">${button.label}</span><span class="visually-hidden"> a Useless Machine${edge ? ` in ${edge.city}` : ''}</span></button>
</form>
<div class="readout">
<span class="timer" id="launch-timer" role="timer" aria-label="Time since launch" data-started="false" data-running="false">${formatElapsed(0)}</span>
<p class="status" id="launch-status" role="status" aria-live="polite">${button.message}</p>
<a class="open-link" id="open-link" hidden>Not moving? Open your machine</a>
${renderLaunchTimesPanel(model.launchRegion, model.launchTimes)}
</div>
<noscript><p class="noscript">Without JavaScript the button still works: you will see a simple progress page instead of the live timer.</p></noscript>
</section>
<ul class="facts">
<li><span class="key key-edge" aria-hidden="true"></span><span id="edge-text">${renderEdgeSentence(model.edgeRegion)}</span></li>
<li><span class="key key-live" aria-hidden="true"></span><span>Useless Machines are running in: ${renderRegionChips(counts, 'fleet-regions')}</span></li>
<li><span class="key key-cap" aria-hidden="true"></span><span id="capacity">${capacityText(model.fleet.capacity)}</span></li>
</ul>
</div>
<figure class="map-panel panel" aria-labelledby="map-caption">
${renderMap({ edgeRegion: model.edgeRegion, machines: model.fleet.machines, label: 'World map of Fly.io regions', times: model.launchTimes?.regions })}
<figcaption class="legend" id="map-caption"><span><i class="k-region"></i>Fly.io region</span><span><i class="k-edge"></i>Your edge region</span><span><i class="k-live"></i>Has Useless Machines</span><span><i class="k-own"></i>Your machine</span></figcaption>
</figure>
</main>
</div>`;
  return renderDocument({
    title: 'WhereMachines: start a useless machine in the cloud',
    description:
      'Press one button to boot a tiny virtual machine near you on Fly.io, and watch it switch itself off.',
    nonce: model.nonce,
    cssHref: model.assets.css,
    scriptSrc: model.assets.appJs,
    config: pageConfig(
      model.endpoints,
      model.timing,
      model.edgeRegion ? { edgeRegion: model.edgeRegion } : {},
    ),
    body,
  });
}
