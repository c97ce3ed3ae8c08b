/**
 * Runs the launch button chart in the browser: provides its effects (POST /launches, the launch's
 * EventSource, the redirect) and renders each snapshot into the button, status line and timer.
 */
import { createActor } from 'xstate';
import type { PageConfig } from '../ui/config.js';
import type { LaunchView } from '../wire.js';
import { formatElapsed } from '../ui/format.js';
import { asLaunchAccepted, errorMessage, parseLaunchMessage } from './fleet.validate.js';
import { launchButtonMachine, type LaunchButtonEvent } from '../ui/launchButton.machine.js';
import {
  elapsedMs,
  viewLaunchButton,
  type ButtonMode,
  type LaunchButtonView,
} from '../ui/launchButton.view.js';

export interface LaunchButtonDom {
  readonly form: HTMLFormElement;
  readonly button: HTMLButtonElement;
  /** Text inside the button. */
  readonly label?: HTMLElement | null;
  /** The status sentence; when it is the page's aria-live region, changes are announced. */
  readonly status?: HTMLElement | null;
  readonly timer?: HTMLElement | null;
  /** A fallback link to the machine, shown once it is ready. */
  readonly link?: HTMLAnchorElement | null;
}

export interface LaunchButtonOptions {
  readonly config: PageConfig;
  readonly mode: ButtonMode;
  readonly region?: string | undefined;
  readonly cityOf?: (code: string) => string;
  /** Called whenever the region this launch's machine lives in changes (undefined: none). */
  readonly onOwnRegion?: (region: string | undefined) => void;
  /** Called with every new status sentence (for a shared announcer). */
  readonly announce?: (message: string, view: LaunchButtonView) => void;
  /** Every message of the launch's stream, as it arrives (the launch panel's timeline). */
  readonly onLaunchView?: (view: LaunchView) => void;
  /** Where `ready` sends the browser; `location.assign` unless a test says otherwise. */
  readonly navigate?: (url: string) => void;
}

const NETWORK_WORDS = 'Could not reach the server. Check your connection and try again.';

async function postLaunch(url: string, region: string | undefined): Promise<LaunchButtonEvent> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(region ? { region } : {}),
      credentials: 'same-origin',
    });
  } catch {
    return { type: 'refused', message: NETWORK_WORDS };
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (res.ok) {
    const accepted = asLaunchAccepted(body);
    if (accepted) return { type: 'accepted', ...accepted };
    return { type: 'refused', message: 'The server gave an answer we did not understand.' };
  }
  return {
    type: 'refused',
    message: errorMessage(body) ?? `The server said no (HTTP ${res.status}).`,
  };
}

/** Starts the chart for one button and returns a function that stops it and releases everything. */
export function mountLaunchButton(dom: LaunchButtonDom, opts: LaunchButtonOptions): () => void {
  let stream: EventSource | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  let lastMessage = '';
  let lastOwn: string | undefined;
  let stopped = false;
  const navigate = opts.navigate ?? ((url: string) => window.location.assign(url));
  const now = () => performance.now();

  const actor = createActor(
    launchButtonMachine.provide({
      actions: {
        postLaunch: (_, params) => {
          void postLaunch(opts.config.endpoints.launches, params.region).then((ev) => {
            if (!stopped) actor.send(ev);
          });
        },
        openStream: (_, params) => {
          stream?.close();
          const es = new EventSource(params.url);
          stream = es;
          es.addEventListener('launch', (e) => {
            const view = parseLaunchMessage(e.data);
            if (!view) return;
            actor.send({ type: 'launch', view, receivedAt: now() });
            opts.onLaunchView?.(view);
          });
          // Network blips reconnect by themselves (with Last-Event-ID); a refused stream is final.
          es.addEventListener('error', () => {
            if (es.readyState === EventSource.CLOSED && stream === es)
              actor.send({ type: 'lost', receivedAt: now() });
          });
        },
        closeStream: () => {
          stream?.close();
          stream = undefined;
        },
        redirect: (_, params) => {
          if (params.url) navigate(params.url);
        },
      },
    }),
    {
      input: {
        redirect: opts.mode === 'page',
        region: opts.region,
        failureWords: opts.config.failureWords,
        timing: opts.config.timing,
      },
    },
  );

  const showTime = () => {
    if (!dom.timer) return;
    const ms = elapsedMs(actor.getSnapshot().context, now());
    dom.timer.textContent = ms === undefined ? formatElapsed(0) : formatElapsed(ms);
  };

  const render = () => {
    const snap = actor.getSnapshot();
    const view = viewLaunchButton(snap, opts.mode, opts.cityOf);
    dom.button.disabled = view.disabled;
    dom.button.dataset.state = view.state;
    dom.form.dataset.state = view.state;
    dom.button.setAttribute('aria-busy', String(!view.disabled ? false : view.state !== 'failed'));
    if (dom.label && dom.label.textContent !== view.label) dom.label.textContent = view.label;
    if (view.message !== lastMessage) {
      lastMessage = view.message;
      if (dom.status) dom.status.textContent = view.message;
      opts.announce?.(view.message, view);
    }
    if (dom.timer) {
      dom.timer.dataset.running = String(view.timerRunning);
      dom.timer.dataset.started = String(snap.context.timer !== undefined);
    }
    if (view.timerRunning && ticker === undefined) ticker = setInterval(showTime, 100);
    if (!view.timerRunning && ticker !== undefined) {
      clearInterval(ticker);
      ticker = undefined;
    }
    showTime();
    if (dom.link) {
      if (view.link) {
        dom.link.href = view.link;
        dom.link.hidden = false;
      } else {
        dom.link.hidden = true;
        dom.link.removeAttribute('href');
      }
    }
    if (view.ownRegion !== lastOwn) {
      lastOwn = view.ownRegion;
      opts.onOwnRegion?.(view.ownRegion);
    }
  };

  const onSubmit = (e: SubmitEvent) => {
    e.preventDefault();
    if (actor.getSnapshot().can({ type: 'press' })) actor.send({ type: 'press' });
  };

  dom.form.addEventListener('submit', onSubmit);
  const sub = actor.subscribe(render);
  actor.start();
  render();

  return () => {
    stopped = true;
    dom.form.removeEventListener('submit', onSubmit);
    sub.unsubscribe();
    actor.stop();
    stream?.close();
    if (ticker !== undefined) clearInterval(ticker);
  };
}
