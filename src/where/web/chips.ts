/**
 * DOM twin of the server's region chips: rebuilds the "running in" list from region counts with
 * text nodes only (never innerHTML), so no region string can become markup.
 */
import { chipCount, NO_MACHINES_TEXT, type RegionCount } from '../ui/format.js';

export function renderChips(
  list: Element | null,
  counts: readonly RegionCount[],
  cityOf: (code: string) => string,
): void {
  if (!list) return;
  const doc = list.ownerDocument;
  const items: Element[] = [];
  if (counts.length === 0) {
    const li = doc.createElement('li');
    li.className = 'chip none';
    li.textContent = NO_MACHINES_TEXT;
    items.push(li);
  }
  for (const c of counts) {
    const li = doc.createElement('li');
    li.className = 'chip';
    li.dataset.region = c.code;
    const code = doc.createElement('span');
    code.className = 'code';
    code.textContent = c.code;
    li.append(`${cityOf(c.code)} `, code);
    const count = chipCount(c.count);
    if (count) {
      const n = doc.createElement('span');
      n.className = 'count';
      n.textContent = count;
      li.append(' ', n);
    }
    items.push(li);
  }
  list.replaceChildren(...items);
}
