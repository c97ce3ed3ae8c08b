/**
 * Launch times in server HTML: the launch panel's line about the region a launch goes to (with
 * empty places for the visitor's own timeline and comparison, filled by the script), and a
 * launch's timeline of facts for its own page.
 */
import { cityName } from '../../shared/regions.js';
import {
  placementSentence,
  readyTimeSentence,
  regionTimesSentence,
  timelineItems,
} from '../ui/launchTimes.js';
import type { LaunchTimesView, LaunchView, RegionTimesView } from '../wire.js';
import { markup, type SafeHtml } from './html.js';

/** The element ids the browser script fills (src/where/web/launchPanel.ts). */
export const PANEL_IDS = {
  typical: 'launch-typical',
  timeline: 'launch-timeline',
  compare: 'launch-compare',
  placement: 'launch-placement',
} as const;

const TIMELINE_LABEL = 'The launch, fact by fact';

const regionTimes = (times: LaunchTimesView | undefined, region: string) =>
  times && Object.hasOwn(times.regions, region) ? times.regions[region] : undefined;

/** The landing page's part of the launch panel: what to expect where the launch goes. */
export function renderLaunchTimesPanel(
  region: string | undefined,
  times: LaunchTimesView | undefined,
): SafeHtml {
  const typical = region
    ? regionTimesSentence(cityName(region), regionTimes(times, region))
    : undefined;
  return markup`<p class="times" id="${PANEL_IDS.typical}" data-region="${region ?? ''}"${typical ? '' : markup` hidden`}>${typical ?? ''}</p>
<ol class="timeline" id="${PANEL_IDS.timeline}" aria-label="${TIMELINE_LABEL}" hidden></ol>
<p class="compare" id="${PANEL_IDS.compare}" hidden></p>
<p class="placement" id="${PANEL_IDS.placement}" role="status" hidden></p>`;
}

/** A launch's steps as an ordered list: each fact's name and its time since the request. */
export function renderTimeline(view: LaunchView): SafeHtml {
  const items = timelineItems(view.timeline ?? [], view.requestedAt);
  if (items.length === 0) return markup``;
  const li = items.map(
    (i) =>
      markup`<li${i.fact ? markup` data-fact="${i.fact}"` : ''}>${i.label}${i.after && i.at ? markup` <time datetime="${i.at}">${i.after}</time>` : ''}</li>`,
  );
  return markup`<ol class="timeline" aria-label="${TIMELINE_LABEL}">${li}</ol>`;
}

/**
 * A launch's own page, beyond its status: how its time compared once ready, its timeline, and
 * what its region takes typically.
 */
export function renderLaunchTimes(
  view: LaunchView,
  typical: RegionTimesView | undefined,
): SafeHtml {
  const city = cityName(view.placedIn ?? view.region);
  const placed = placementSentence(view, cityName);
  const placement = placed ? markup`<p class="placement">${placed}</p>` : '';
  const compare = view.readyTime
    ? markup`<p class="compare">${readyTimeSentence(view.readyTime, city)}</p>`
    : '';
  return markup`${placement}${compare}${renderTimeline(view)}<p class="times">${regionTimesSentence(city, typical)}</p>`;
}
