/**
 * Feeds the fleet store from `GET /events`. EventSource reconnects by itself after a network
 * drop; when the server refuses the stream outright it is CLOSED for good, so we retry with backoff.
 */
import type { FleetStore } from './fleet.store.js';
import { parseFleetMessage } from './fleet.validate.js';

export type StreamState = 'connecting' | 'open' | 'retrying';

export interface FleetStreamOptions {
  readonly onState?: (state: StreamState) => void;
  /** First retry delay after a refused stream; doubles up to 30 s. */
  readonly retryMs?: number;
}

const EVENTS = ['fleet', 'machine', 'machineGone', 'capacity'] as const;

/** Connects and returns a function that disconnects (and cancels any pending retry). */
export function connectFleet(
  url: string,
  store: FleetStore,
  opts: FleetStreamOptions = {},
): () => void {
  let es: EventSource | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let delay = opts.retryMs ?? 2_000;
  let closed = false;

  const onMessage = (e: Event) => {
    const m = e as MessageEvent;
    const msg = parseFleetMessage(m.type, m.data);
    if (!msg) return; // malformed: ignored, never thrown
    const receivedAt = Date.now();
    switch (msg.event) {
      case 'fleet':
        store.trigger.fleet({ snapshot: msg.data, receivedAt });
        break;
      case 'machine':
        store.trigger.machine({ machine: msg.data });
        break;
      case 'machineGone':
        store.trigger.machineGone({ gone: msg.data, receivedAt });
        break;
      case 'capacity':
        store.trigger.capacity({ capacity: msg.data });
        break;
    }
  };

  const open = () => {
    if (closed) return;
    opts.onState?.('connecting');
    const source = new EventSource(url);
    es = source;
    for (const name of EVENTS) source.addEventListener(name, onMessage);
    source.addEventListener('open', () => {
      delay = opts.retryMs ?? 2_000;
      opts.onState?.('open');
    });
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) return; // the browser is already reconnecting
      source.close();
      opts.onState?.('retrying');
      retry = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };

  open();
  return () => {
    closed = true;
    es?.close();
    if (retry !== undefined) clearTimeout(retry);
  };
}
