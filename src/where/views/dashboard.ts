/**
 * The operator's dashboard: capacity, machines per region, the autospawner with its switch, the
 * map, a launch button per region with its typical launch time (no redirect) and the live machine
 * list. Server-rendered; the dash bundle keeps it live from the fleet stream.
 */
import { REGIONS, findRegion } from '../../shared/regions.js';
import type { FleetMachine, FleetSnapshot, LaunchTimesView, RegionTimesView } from '../wire.js';
import { machineLink, type PageConfig, type Timing } from '../ui/config.js';
import {
  capacityText,
  formatAge,
  formatCountdown,
  machineAge,
  NO_MACHINE_ROWS_TEXT,
  parseTime,
  regionCounts,
} from '../ui/format.js';
import { idleLaunchButton } from '../ui/launchButton.view.js';
import { tileTimesText } from '../ui/launchTimes.js';
import { markup, safeUrl, type SafeHtml } from './html.js';
import { pageConfig, renderEdgeSentence, renderRegionChips, type PageAssets } from './landing.js';
import { renderDocument } from './layout.js';
import { renderMap } from './map.js';

/** What the dashboard shows of the autospawner. */
export interface AutospawnerView {
  /** `off`: switched off; `idle`: on, but nobody is watching; `active`: spawning on its interval. */
  readonly state: 'off' | 'idle' | 'active';
  /** Mean time between spawns (jitter is applied on top). */
  readonly intervalMs: number;
  /** The rotation it spawns through, in order. */
  readonly regions: readonly string[];
  readonly nextRegion?: string | undefined;
  /** ISO time of the next spawn, when one is scheduled. */
  readonly nextSpawnAt?: string | undefined;
  /** Visitors watching right now (cluster-wide). */
  readonly visitors: number;
  /** ISO time of the last spawn, if any. */
  readonly lastSpawnAt?: string | undefined;
  /** Spawns so far. */
  readonly spawns?: number | undefined;
}

export interface DashboardModel {
  readonly edgeRegion?: string | undefined;
  readonly fleet: FleetSnapshot;
  /** Typical launch times by region (the fleet stream's `launchTimes`), beside each tile's button. */
  readonly launchTimes?: LaunchTimesView | undefined;
  readonly autospawner: AutospawnerView;
  /** `appJs` is the dashboard bundle (`dist/web/dash.js`). */
  readonly assets: PageAssets;
  readonly nonce?: string | undefined;
  /** A machine's page, with `{id}` where the (URL-encoded) machine id goes. */
  readonly machineUrl: string;
  /** `launches` defaults to `/launches`, `events` to `/events`, `autospawner` to `/dash/autospawner`. */
  readonly endpoints?: Partial<PageConfig['endpoints']> & { readonly autospawner?: string };
  readonly timing?: Partial<Timing>;
}

const STATE_WORDS: Record<AutospawnerView['state'], string> = {
  off: 'Switched off',
  idle: 'On, waiting for visitors',
  active: 'Spawning',
};

function cityOrCode(code: string): string {
  return findRegion(code)?.city ?? code;
}

/** One row of the live machine list; the browser builds the same cells with text nodes. */
export function renderMachineRow(m: FleetMachine, machineUrl: string, nowMs: number): SafeHtml {
  const href = safeUrl(machineLink(machineUrl, m.machineId) ?? '');
  const id = href
    ? markup`<a href="${href}"><code>${m.machineId}</code></a>`
    : markup`<code>${m.machineId}</code>`;
  return markup`<tr data-machine="${m.machineId}"><td>${id}</td><td>${cityOrCode(m.region)} <code>${m.region}</code></td><td><span class="badge" data-status="${m.status}">${m.status}</span></td><td>${m.source}</td><td class="age" data-created="${m.createdAt}">${machineAge(m.createdAt, nowMs)}</td></tr>`;
}

/** All rows, oldest first, or one row saying there are none. */
export function renderMachineRows(
  machines: readonly FleetMachine[],
  machineUrl: string,
  nowMs: number,
): SafeHtml {
  if (machines.length === 0)
    return markup`<tr class="empty"><td colspan="5">${NO_MACHINE_ROWS_TEXT}</td></tr>`;
  const sorted = [...machines].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0,
  );
  return markup`${sorted.map((m) => renderMachineRow(m, machineUrl, nowMs))}`;
}

export function renderAutospawner(a: AutospawnerView, action: string, nowMs: number): SafeHtml {
  const next = parseTime(a.nextSpawnAt);
  const last = parseTime(a.lastSpawnAt);
  const on = a.state !== 'off';
  const nextRegion = a.nextRegion
    ? markup`${cityOrCode(a.nextRegion)} <code>${a.nextRegion}</code>`
    : '—';
  const nextSpawn =
    next !== undefined && a.state === 'active'
      ? markup`<time id="next-spawn" datetime="${a.nextSpawnAt ?? ''}">${formatCountdown(next - nowMs)}</time>`
      : '—';
  return markup`<section class="card panel" id="autospawner" aria-labelledby="auto-h">
<h2 id="auto-h">Autospawner</h2>
<p><span class="badge" id="auto-state" data-state="${a.state}">${a.state}</span> ${STATE_WORDS[a.state]}</p>
<dl class="kv">
<dt>Every</dt><dd>${formatAge(a.intervalMs)} ± 20 %</dd>
<dt>Next region</dt><dd>${nextRegion}</dd>
<dt>Next spawn</dt><dd>${nextSpawn}</dd>
<dt>Visitors</dt><dd>${a.visitors}</dd>
${a.spawns !== undefined ? markup`<dt>Spawned</dt><dd>${a.spawns}${last !== undefined ? `, last ${formatAge(nowMs - last)} ago` : ''}</dd>` : ''}
<dt>Rotation</dt><dd>${a.regions.length ? markup`<code>${a.regions.join(' ')}</code>` : '—'}</dd>
</dl>
<form class="switch-form" method="post" action="${action}">
<input type="hidden" name="on" value="${on ? 'false' : 'true'}">
<button class="btn${on ? '' : ' primary'}" type="submit">${on ? 'Switch off' : 'Switch on'}</button>
</form>
</section>`;
}

const IDLE_TILE = idleLaunchButton('tile');

function renderTile(
  code: string,
  city: string,
  count: number,
  launches: string,
  times: RegionTimesView | undefined,
): SafeHtml {
  return markup`<li class="tile panel" data-tile="${code}" data-live="${count > 0 ? 'true' : 'false'}">
<div class="tile-head"><span class="tile-city">${city}</span><code>${code}</code></div>
<span class="tile-count" data-count="${count}">${count} live</span>
<p class="tile-times" id="times-${code}" data-times="${code}">${tileTimesText(times)}</p>
<form class="tile-form" method="post" action="${launches}" data-region="${code}"><input type="hidden" name="region" value="${code}"><button class="tile-button" type="submit" data-state="${IDLE_TILE.state}" aria-describedby="times-${code}"><span class="tile-label">${IDLE_TILE.label}</span><span class="visually-hidden"> a machine in ${city}</span></button></form>
<p class="tile-note" data-note="${code}">${IDLE_TILE.message}</p>
</li>`;
}

export function renderDashboard(model: DashboardModel): string {
  const { fleet } = model;
  const nowMs = parseTime(fleet.at) ?? 0;
  const counts = regionCounts(fleet.machines.map((m) => m.region));
  const countOf = new Map(counts.map((c) => [c.code, c.count]));
  const launches = model.endpoints?.launches ?? '/launches';
  const times = model.launchTimes?.regions;
  const timesOf = (code: string) => (times && Object.hasOwn(times, code) ? times[code] : undefined);
  const tiles = [...REGIONS]
    .sort((a, b) => a.city.localeCompare(b.city, 'en'))
    .map((r) => renderTile(r.code, r.city, countOf.get(r.code) ?? 0, launches, timesOf(r.code)));
  const cap = fleet.capacity;
  const body = markup`<div class="wrap dash">
<header class="brand"><a href="/">WhereMachines</a><nav><a href="/">Visitor page</a></nav></header>
<main>
<h1>Dashboard</h1>
<p class="lede">${renderEdgeSentence(model.edgeRegion)} <span class="visually-hidden" id="dash-announcer" role="status" aria-live="polite"></span></p>
<div class="dash-grid">
<section class="card panel" aria-labelledby="cap-h">
<h2 id="cap-h">Capacity</h2>
<p class="big-number"><span id="cap-live">${cap.live}</span><small> / <span id="cap-limit">${cap.limit}</span> live</small></p>
<meter id="cap-meter" min="0" max="${Math.max(cap.limit, 1)}" value="${cap.live}" low="${Math.max(cap.limit - 2, 0)}" high="${Math.max(cap.limit - 1, 0)}" optimum="0">${capacityText(cap)}</meter>
</section>
<section class="card panel" aria-labelledby="regions-h">
<h2 id="regions-h">Machines by region</h2>
<p class="big-number"><span id="machine-total">${fleet.machines.length}</span><small> in <span id="region-total">${counts.length}</span> ${counts.length === 1 ? 'region' : 'regions'}</small></p>
${renderRegionChips(counts, 'dash-regions')}
</section>
${renderAutospawner(model.autospawner, model.endpoints?.autospawner ?? '/dash/autospawner', nowMs)}
</div>
<figure class="map-panel panel">
${renderMap({ edgeRegion: model.edgeRegion, machines: fleet.machines, ...(times ? { times } : {}) })}
<figcaption class="legend"><span><i class="k-region"></i>Fly.io region</span><span><i class="k-edge"></i>Your edge region</span><span><i class="k-live"></i>Has Useless Machines</span><span><i class="k-own"></i>Launched from here</span></figcaption>
</figure>
<div class="section-title"><h2 id="tiles-h">Launch in a region</h2><p>Each button starts a machine there; this page stays put. Beside it, the median click → ready of the region's last launches.</p></div>
<ul class="tiles" aria-labelledby="tiles-h">${tiles}</ul>
<div class="section-title"><h2 id="machines-h">Live machines</h2><p>Updated as they change.</p></div>
<div class="table-wrap panel"><table class="machines" aria-labelledby="machines-h">
<thead><tr><th scope="col">Machine</th><th scope="col">Region</th><th scope="col">Status</th><th scope="col">Source</th><th scope="col">Age</th></tr></thead>
<tbody id="machine-rows">${renderMachineRows(fleet.machines, model.machineUrl, nowMs)}</tbody>
</table></div>
</main>
</div>`;
  return renderDocument({
    title: 'WhereMachines dashboard',
    nonce: model.nonce,
    cssHref: model.assets.css,
    scriptSrc: model.assets.appJs,
    config: pageConfig(model.endpoints, model.timing, {
      machineUrl: model.machineUrl,
      ...(model.edgeRegion ? { edgeRegion: model.edgeRegion } : {}),
    }),
    body,
  });
}
