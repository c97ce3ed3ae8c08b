/**
 * The dashboard's script: capacity, per-region counts and launch times, the machine list and the
 * map stay live from the fleet stream; every region tile runs its own launch button chart (no
 * redirect).
 */
import { renderChips } from './chips.js';
import { CONFIG_ELEMENT_ID, parseConfig } from '../ui/config.js';
import {
  createFleetStore,
  sameRegionSummary,
  selectMachineList,
  selectRegionSummary,
} from './fleet.store.js';
import { connectFleet } from './fleetStream.js';
import { capacityText, formatCountdown, parseTime } from '../ui/format.js';
import { tileTimesText } from '../ui/launchTimes.js';
import { mountLaunchButton } from './launchButton.js';
import { refreshAges, renderMachineTable } from './machineTable.js';
import { bindMap } from './mapView.js';

const config = parseConfig(document.getElementById(CONFIG_ELEMENT_ID)?.textContent);
const map = bindMap(document.getElementById('region-map'));
const store = createFleetStore();
const byId = (id: string) => document.getElementById(id);
const serverNow = () => Date.now() + store.getSnapshot().context.clockOffsetMs;

store.select(selectRegionSummary, sameRegionSummary).subscribe(({ counts }) => {
  map.setCounts(counts);
  renderChips(byId('dash-regions'), counts, map.cityOf);
  const countOf = new Map(counts.map((c) => [c.code, c.count]));
  for (const tile of document.querySelectorAll<HTMLElement>('[data-tile]')) {
    const n = countOf.get(tile.dataset.tile ?? '') ?? 0;
    tile.dataset.live = String(n > 0);
    const el = tile.querySelector<HTMLElement>('.tile-count');
    if (el) {
      el.dataset.count = String(n);
      el.textContent = `${n} live`;
    }
  }
  const total = byId('region-total');
  if (total) total.textContent = String(counts.length);
});

// Typical launch times: the map's marker titles (as on the visitor's map) and each tile's line.
store
  .select((c) => c.launchTimes)
  .subscribe((times) => {
    if (!times) return;
    map.setTimes(times);
    for (const el of document.querySelectorAll<HTMLElement>('[data-times]')) {
      const code = el.dataset.times ?? '';
      const text = tileTimesText(Object.hasOwn(times, code) ? times[code] : undefined);
      if (el.textContent !== text) el.textContent = text;
    }
  });

store
  .select((c) => c.machines)
  .subscribe(() => {
    const list = selectMachineList(store.getSnapshot().context);
    const total = byId('machine-total');
    if (total) total.textContent = String(list.length);
    renderMachineTable(byId('machine-rows'), list, {
      machineUrl: config.machineUrl,
      cityOf: map.cityOf,
      serverNow: serverNow(),
    });
  });

store
  .select((c) => c.capacity)
  .subscribe((cap) => {
    if (!cap) return;
    const live = byId('cap-live');
    const limit = byId('cap-limit');
    const meter = byId('cap-meter');
    if (live) live.textContent = String(cap.live);
    if (limit) limit.textContent = String(cap.limit);
    if (meter instanceof HTMLMeterElement) {
      meter.max = Math.max(cap.limit, 1);
      meter.value = cap.live;
      meter.textContent = capacityText(cap);
    }
  });

connectFleet(config.endpoints.events, store, {
  onState: (s) => {
    document.body.dataset.fleet = s;
  },
});

// Ages and the autospawner countdown move once a second.
setInterval(() => {
  const now = serverNow();
  refreshAges(byId('machine-rows'), now);
  const next = byId('next-spawn');
  const at = parseTime(next?.getAttribute('datetime') ?? undefined);
  if (next && at !== undefined) next.textContent = formatCountdown(at - now);
}, 1_000);

// The autospawner panel follows the server (state, visitors, next spawn) every few seconds. The
// server renders it, escaped, exactly as on first load.
setInterval(() => {
  fetch('/dash/autospawner', { headers: { accept: 'text/html' }, credentials: 'same-origin' })
    .then((r) => (r.ok ? r.text() : undefined))
    .then((html) => {
      const panel = byId('autospawner');
      if (!html || !panel) return;
      const next = new DOMParser().parseFromString(html, 'text/html').getElementById('autospawner');
      if (next) panel.replaceWith(next);
    })
    .catch(() => undefined);
}, 5_000);

// One chart per region tile; their machines pulse on the map while alive.
const own = new Map<string, string>();
const announcer = byId('dash-announcer');
for (const form of document.querySelectorAll<HTMLFormElement>('form.tile-form[data-region]')) {
  const region = form.dataset.region ?? '';
  const button = form.querySelector('button');
  if (!(button instanceof HTMLButtonElement)) continue;
  const tile = form.closest('[data-tile]');
  const note = tile?.querySelector<HTMLElement>('.tile-note') ?? null;
  mountLaunchButton(
    { form, button, label: button.querySelector<HTMLElement>('.tile-label'), status: note },
    {
      config,
      mode: 'tile',
      region,
      cityOf: map.cityOf,
      onOwnRegion: (r) => {
        if (r) own.set(region, r);
        else own.delete(region);
        map.setOwn(own.values());
      },
      announce: (message, view) => {
        if (note) note.dataset.state = view.state;
        if (announcer && view.state !== 'idle')
          announcer.textContent = `${map.cityOf(region)}: ${message}`;
      },
    },
  );
}
document.body.dataset.ready = 'true';
