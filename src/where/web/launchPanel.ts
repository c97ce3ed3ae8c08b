/**
 * The launch panel's launch times in the browser: the typical time where the launch goes (live
 * from the fleet stream), the visitor's own launch as a timeline of its facts, and once it is
 * ready how it compared. Text nodes only: nothing from the server becomes markup.
 */
import {
  placementSentence,
  readyTimeSentence,
  regionTimesSentence,
  timelineItems,
  timelineText,
} from '../ui/launchTimes.js';
import type { LaunchView, RegionTimesView } from '../wire.js';

export interface LaunchPanelDom {
  readonly typical: HTMLElement | null;
  readonly timeline: HTMLElement | null;
  readonly compare: HTMLElement | null;
  /** Where the machine went when its region was full. */
  readonly placement?: HTMLElement | null;
}

export interface LaunchPanel {
  /** Every region's typical time (a fleet `launchTimes` message). */
  setTimes(this: void, times: Readonly<Record<string, RegionTimesView>>): void;
  /** The region the current launch goes to (undefined: back to the page's default). */
  setRegion(this: void, region: string | undefined): void;
  /** A message of the visitor's launch stream. */
  showLaunch(this: void, view: LaunchView): void;
}

export function bindLaunchPanel(
  dom: LaunchPanelDom,
  cityOf: (code: string) => string,
): LaunchPanel {
  const pageRegion = dom.typical?.dataset.region || undefined;
  let region = pageRegion;
  let times: Readonly<Record<string, RegionTimesView>> | undefined;
  let launchId: string | undefined;

  const showTypical = () => {
    const el = dom.typical;
    if (!el || !region || !times) return;
    el.textContent = regionTimesSentence(
      cityOf(region),
      Object.hasOwn(times, region) ? times[region] : undefined,
    );
    el.dataset.region = region;
    el.hidden = false;
  };

  const showTimeline = (view: LaunchView) => {
    const el = dom.timeline;
    if (!el || !view.timeline) return;
    const items = timelineItems(view.timeline, view.requestedAt);
    const doc = el.ownerDocument;
    el.replaceChildren(
      ...items.map((i) => {
        const li = doc.createElement('li');
        li.textContent = i.label;
        if (i.fact) li.dataset.fact = i.fact;
        if (i.after && i.at) {
          const time = doc.createElement('time');
          time.dateTime = i.at;
          time.textContent = i.after;
          li.append(' ', time);
        }
        return li;
      }),
    );
    el.dataset.text = timelineText(items);
    el.hidden = items.length === 0;
  };

  /** The machine went elsewhere: the typical time shown is the one where it is. */
  const setRegionOnce = (next: string) => {
    if (region === next) return;
    region = next;
    showTypical();
  };

  return {
    setTimes(next) {
      times = next;
      showTypical();
    },
    setRegion(next) {
      region = next ?? pageRegion;
      showTypical();
    },
    showLaunch(view) {
      if (view.launchId !== launchId) {
        // A new launch: the previous one's comparison goes.
        launchId = view.launchId;
        if (dom.compare) dom.compare.hidden = true;
      }
      showTimeline(view);
      const placed = placementSentence(view, cityOf);
      if (dom.placement) {
        dom.placement.textContent = placed ?? '';
        dom.placement.hidden = placed === undefined;
      }
      if (view.placedIn) setRegionOnce(view.placedIn);
      if (dom.compare && view.readyTime) {
        dom.compare.textContent = readyTimeSentence(
          view.readyTime,
          cityOf(view.placedIn ?? view.region),
        );
        dom.compare.hidden = false;
      }
    },
  };
}
