/**
 * DOM twin of the dashboard's machine list: rebuilds the rows with text nodes only, and refreshes
 * the age column against the server's clock (client clock + the offset the fleet stream measured).
 */
import type { FleetMachine } from '../wire.js';
import { machineLink } from '../ui/config.js';
import { machineAge, NO_MACHINE_ROWS_TEXT } from '../ui/format.js';

function safeHref(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url, document.baseURI);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

function cell(doc: Document, ...children: (Node | string)[]): HTMLTableCellElement {
  const td = doc.createElement('td');
  td.append(...children);
  return td;
}

function code(doc: Document, text: string): HTMLElement {
  const c = doc.createElement('code');
  c.textContent = text;
  return c;
}

export function renderMachineTable(
  tbody: HTMLElement | null,
  machines: readonly FleetMachine[],
  opts: { machineUrl?: string | undefined; cityOf: (code: string) => string; serverNow: number },
): void {
  if (!tbody) return;
  const doc = tbody.ownerDocument;
  if (machines.length === 0) {
    const tr = doc.createElement('tr');
    tr.className = 'empty';
    const td = cell(doc, NO_MACHINE_ROWS_TEXT);
    td.colSpan = 5;
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  const rows = machines.map((m) => {
    const tr = doc.createElement('tr');
    tr.dataset.machine = m.machineId;
    const href = safeHref(machineLink(opts.machineUrl, m.machineId));
    let idCell: Node = code(doc, m.machineId);
    if (href) {
      const a = doc.createElement('a');
      a.href = href;
      a.append(idCell);
      idCell = a;
    }
    const badge = doc.createElement('span');
    badge.className = 'badge';
    badge.dataset.status = m.status;
    badge.textContent = m.status;
    const age = cell(doc, '');
    age.className = 'age';
    age.dataset.created = m.createdAt;
    tr.append(
      cell(doc, idCell),
      cell(doc, `${opts.cityOf(m.region)} `, code(doc, m.region)),
      cell(doc, badge),
      cell(doc, m.source),
      age,
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
  refreshAges(tbody, opts.serverNow);
}

export function refreshAges(root: ParentNode | null, serverNow: number): void {
  for (const td of root?.querySelectorAll<HTMLElement>('td.age[data-created]') ?? []) {
    const text = machineAge(td.dataset.created, serverNow);
    if (td.textContent !== text) td.textContent = text;
  }
}
