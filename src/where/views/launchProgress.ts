/**
 * The page a browser without JavaScript sees after pressing the launch button: the launch's
 * status, refreshed every second with a meta refresh, and on to the machine once it is ready.
 */
import { cityName } from '../../shared/regions.js';
import {
  FAILURE_WORDS,
  type LaunchStatus,
  type LaunchView,
  type RegionTimesView,
} from '../wire.js';
import { formatElapsed, parseTime } from '../ui/format.js';
import { markup, safeUrl, type SafeHtml } from './html.js';
import { renderDocument } from './layout.js';
import { renderLaunchTimes } from './launchTimes.js';

export interface LaunchProgressModel {
  /** The launch as it stands; absent when the launch was refused before it existed. */
  readonly launch?: LaunchView | undefined;
  /** A refusal (capacity, rate limit, bad request): its words are shown. */
  readonly error?: { readonly message: string } | undefined;
  /** Seconds between refreshes while the launch is in progress (default 1). */
  readonly refreshSeconds?: number;
  /** Where "back" goes (default `/`). */
  readonly homeUrl?: string;
  /** The launch region's typical time (shown under the launch's own timeline). */
  readonly typical?: RegionTimesView | undefined;
  /** The visitor came back from the machine: a ready launch links to it instead of forwarding. */
  readonly stay?: boolean;
  readonly nonce?: string | undefined;
  readonly assets?: { readonly css?: string | undefined };
}

function elapsed(v: LaunchView): string {
  const at = parseTime(v.at);
  const req = parseTime(v.requestedAt);
  return at !== undefined && req !== undefined ? formatElapsed(at - req) : formatElapsed(0);
}

export function renderLaunchProgressPage(model: LaunchProgressModel): string {
  const home = model.homeUrl ?? '/';
  const v = model.launch;
  let refresh: string | undefined;
  let heading: string;
  let detail: SafeHtml;
  if (!v) {
    heading = 'No machine this time';
    detail = markup`<p>${model.error?.message ?? 'The launch could not start.'}</p>`;
  } else if (v.status === 'ready') {
    const url = v.url ? safeUrl(v.url) : undefined;
    heading = 'Your machine is ready';
    if (url && model.stay) {
      detail = markup`<p>It took ${elapsed(v)}. <a href="${url}">Back to your machine</a></p>`;
    } else if (url) {
      refresh = `0; url=${url}`;
      detail = markup`<p>It took ${elapsed(v)}. <a href="${url}">Open your machine</a> if nothing happens.</p>`;
    } else {
      detail = markup`<p>It took ${elapsed(v)}, but we have no address to send you to.</p>`;
    }
  } else if (v.status === 'failed') {
    heading = 'The launch failed';
    detail = markup`<p>${(v.reason && FAILURE_WORDS[v.reason]) || v.message || 'Something went wrong.'}</p>`;
  } else if (v.status === 'done') {
    heading = 'This machine has finished';
    detail = markup`<p>It has already switched itself off. Start another one?</p>`;
  } else {
    refresh = String(Math.max(1, Math.round(model.refreshSeconds ?? 1)));
    heading = 'Starting your machine…';
    const id = v.machineId ? markup`Machine <code>${v.machineId}</code>` : 'Your machine';
    const words: Partial<Record<LaunchStatus, SafeHtml>> = {
      requested: markup`Asking for a machine in ${cityName(v.region)}.`,
      created: markup`${id} was created in ${cityName(v.placedIn ?? v.region)} and is booting.`,
      started: markup`${id} is running and about to say hello.`,
    };
    detail = markup`<p>${words[v.status] ?? ''}</p><p class="timer" role="timer">${elapsed(v)}</p><p class="noscript">This page refreshes itself every second.</p>`;
  }
  const body = markup`<main class="progress panel">
<h1>${heading}</h1>
<div role="status">${detail}</div>
${v ? renderLaunchTimes(v, model.typical) : ''}
<p><a href="${home}">Back to the start</a></p>
</main>`;
  return renderDocument({
    title: `${heading} · WhereMachines`,
    nonce: model.nonce,
    cssHref: model.assets?.css,
    body,
    head: refresh ? markup`<meta http-equiv="refresh" content="${refresh}">` : undefined,
  });
}
