/**
 * The landing page's script: keeps the map and the "running in" text live from the fleet stream,
 * and runs the launch button (fetch + launch SSE + timer + redirect). Everything else is HTML.
 */
import { renderChips } from './chips.js';
import { CONFIG_ELEMENT_ID, parseConfig } from '../ui/config.js';
import { createFleetStore, sameRegionSummary, selectRegionSummary } from './fleet.store.js';
import { connectFleet } from './fleetStream.js';
import { capacityText } from '../ui/format.js';
import { mountLaunchButton } from './launchButton.js';
import { bindMap } from './mapView.js';
import { bindLaunchPanel } from './launchPanel.js';

const config = parseConfig(document.getElementById(CONFIG_ELEMENT_ID)?.textContent);
const map = bindMap(document.getElementById('region-map'));
const store = createFleetStore();
const panel = bindLaunchPanel(
  {
    typical: document.getElementById('launch-typical'),
    timeline: document.getElementById('launch-timeline'),
    compare: document.getElementById('launch-compare'),
    placement: document.getElementById('launch-placement'),
  },
  map.cityOf,
);

store.select(selectRegionSummary, sameRegionSummary).subscribe(({ counts }) => {
  map.setCounts(counts);
  renderChips(document.getElementById('fleet-regions'), counts, map.cityOf);
});
store
  .select((c) => c.launchTimes)
  .subscribe((times) => {
    if (!times) return;
    map.setTimes(times);
    panel.setTimes(times);
  });
store
  .select((c) => c.capacity)
  .subscribe((cap) => {
    const el = document.getElementById('capacity');
    if (el) el.textContent = capacityText(cap);
  });

connectFleet(config.endpoints.events, store, {
  onState: (s) => {
    document.body.dataset.fleet = s;
  },
});

const form = document.getElementById('launch-form');
const button = document.getElementById('launch-button');
if (form instanceof HTMLFormElement && button instanceof HTMLButtonElement) {
  mountLaunchButton(
    {
      form,
      button,
      label: document.getElementById('launch-label'),
      status: document.getElementById('launch-status'),
      timer: document.getElementById('launch-timer'),
      link: document.getElementById('open-link') as HTMLAnchorElement | null,
    },
    {
      config,
      mode: 'page',
      cityOf: map.cityOf,
      onOwnRegion: (region) => {
        map.setOwn(region ? [region] : []);
        if (region) panel.setRegion(region);
      },
      onLaunchView: panel.showLaunch,
      announce: (_message, view) => {
        document.getElementById('launch-status')?.setAttribute('data-state', view.state);
      },
    },
  );
}
document.body.dataset.ready = 'true';
