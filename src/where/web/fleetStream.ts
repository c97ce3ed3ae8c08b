/**
 * Feeds the fleet store from `GET /events`. EventSource reconnects by itself after a network
 * drop; when the server refuses the stream outright it is CLOSED for good, so we retry with backoff.
 */
import type { FleetMessage } from '../wire.js';
import type { FleetStore } from './fleet.store.js';
import { FLEET_EVENTS, parseFleetMessage } from './fleet.validate.js';

export type StreamState = 'connecting' | 'open' | 'retrying';

export interface FleetStreamOptions {
  readonly onState?: (state: StreamState) => void;
  /** First retry delay after a refused stream; doubles up to 30 s. */
  readonly retryMs?: number;
}

/** One message as the store event it becomes; arrival times let the store read the clock offset. */
function feed(store: FleetStore, msg: FleetMessage, receivedAt: number): void {
  if (msg.event === 'fleet') store.trigger.fleet({ snapshot: msg.data, receivedAt });
  else if (msg.event === 'machine') store.trigger.machine({ machine: msg.data });
  else if (msg.event === 'machineGone') store.trigger.machineGone({ gone: msg.data, receivedAt });
  else if (msg.event === 'launchTimes') store.trigger.launchTimes({ times: msg.data });
  else store.trigger.capacity({ capacity: msg.data });
}

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
    if (msg) feed(store, msg, Date.now()); // malformed: ignored, never thrown
  };

  const open = () => {
    if (closed) return;
    opts.onState?.('connecting');
    const source = new EventSource(url);
    es = source;
    for (const name of FLEET_EVENTS) source.addEventListener(name, onMessage);
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
