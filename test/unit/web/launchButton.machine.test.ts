import { describe, expect, it } from 'vitest';
import { createActor, initialTransition, transition, type AnyStateNode } from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import { FAILURE_WORDS, type LaunchView } from '../../../src/where/wire.js';
import { DEFAULT_TIMING } from '../../../src/where/ui/config.js';
import {
  LOST_WORDS,
  buttonState,
  launchButtonMachine,
  type LaunchButtonEvent,
  type LaunchButtonInput,
} from '../../../src/where/ui/launchButton.machine.js';
import { elapsedMs, viewLaunchButton } from '../../../src/where/ui/launchButton.view.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

function view(
  status: LaunchView['status'],
  version: number,
  atMs: number,
  over: Partial<LaunchView> = {},
): LaunchView {
  return {
    launchId: 'L1',
    status,
    region: 'fra',
    source: 'button',
    machineId: status === 'requested' ? undefined : 'm-1',
    url: status === 'ready' ? 'http://useless.test/machine?instance=m-1' : undefined,
    at: iso(atMs),
    requestedAt: iso(0),
    version,
    ...over,
  };
}
const launch = (v: LaunchView, receivedAt = 50_000): LaunchButtonEvent => ({
  type: 'launch',
  view: v,
  receivedAt,
});

const input = (redirect: boolean): LaunchButtonInput => ({
  redirect,
  region: redirect ? undefined : 'nrt',
  failureWords: FAILURE_WORDS,
  timing: DEFAULT_TIMING,
});

/** Every state node id of the chart, and every transition it defines (after-transitions included). */
function allNodes(): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (n: AnyStateNode) => {
    out.push(n);
    for (const c of Object.values(n.states)) walk(c);
  };
  walk(launchButtonMachine.root);
  return out;
}
interface Edge {
  readonly eventType: string;
  readonly source: AnyStateNode;
}
const ALL_TRANSITIONS: Edge[] = allNodes().flatMap((n): Edge[] =>
  [...n.transitions.values()].flat(),
);
const AFTER_EVENTS = [
  ...new Set(ALL_TRANSITIONS.map((t) => t.eventType).filter((t) => t.startsWith('xstate.after.'))),
];

// The events a model walk may send: the visitor's press, the server's answers, every launch
// message (in order, repeated, stale, for another launch), the stream dying, and the timers.
const EVENTS: LaunchButtonEvent[] = [
  { type: 'press' },
  { type: 'accepted', launchId: 'L1', events: '/launches/L1/events', region: 'fra' },
  { type: 'refused', message: 'Slow down: too many launches from your address.' },
  launch(view('requested', 1, 300)),
  launch(view('created', 2, 1_200)),
  launch(view('started', 3, 2_000)),
  launch(view('ready', 4, 3_400)),
  launch(view('failed', 4, 3_000, { reason: 'capacity', message: 'x' })),
  launch(view('done', 5, 9_000)),
  launch(view('created', 1, 900)), // stale after anything newer
  launch(view('started', 9, 2_000, { launchId: 'other' })), // another launch: ignored
  { type: 'lost', receivedAt: 52_000 },
  // Timers are events too: the walk fires them like any other.
  ...(AFTER_EVENTS.map((type) => ({ type })) as unknown as LaunchButtonEvent[]),
];

type Path = ReturnType<typeof getSimplePaths<typeof launchButtonMachine>>[number];

function pathsFor(redirect: boolean): { shortest: Path[]; simple: Path[] } {
  const opts = { input: input(redirect), events: EVENTS };
  return {
    shortest: getShortestPaths(launchButtonMachine, opts),
    simple: getSimplePaths(launchButtonMachine, opts),
  };
}

const byMode = { page: pathsFor(true), tile: pathsFor(false) };

describe('launch button chart: coverage', () => {
  it('given both modes, when every shortest path is walked, then every state node is reached', () => {
    const reached = new Set<string>();
    for (const { shortest } of Object.values(byMode)) {
      for (const p of shortest) for (const n of p.state._nodes) reached.add(n.id);
    }
    expect([...reached].sort()).toEqual(
      allNodes()
        .map((n) => n.id)
        .sort(),
    );
  });

  it('given both modes, when every simple path is extended by one more event, then every transition the chart defines is taken', () => {
    const taken = new Set<unknown>();
    for (const { simple } of Object.values(byMode)) {
      for (const p of simple) {
        // steps[k].event leads from steps[k-1].state to steps[k].state.
        for (let k = 1; k < p.steps.length; k++) {
          for (const t of launchButtonMachine.getTransitionData(
            p.steps[k - 1]!.state,
            p.steps[k]!.event,
          ))
            taken.add(t);
        }
        // Simple paths never revisit a state, so edges back to idle only show up one step further.
        for (const e of EVENTS)
          for (const t of launchButtonMachine.getTransitionData(p.state, e)) taken.add(t);
      }
    }
    const missing = ALL_TRANSITIONS.filter((t) => !taken.has(t)).map(
      (t) => `${t.source.id} --${t.eventType}-->`,
    );
    expect(missing).toEqual([]);
    expect(taken.size).toBe(ALL_TRANSITIONS.length);
  });
});

/** Replays one path with the pure `transition()` and checks the invariants at every step. */
function replay(path: Path, redirect: boolean, extra?: LaunchButtonEvent): void {
  let [snap, actions] = initialTransition(launchButtonMachine, input(redirect));
  let streams = 0;
  let posts = 0;
  let redirects = 0;
  let seenReady = false;
  let prev = 'idle';
  const check = (event: LaunchButtonEvent | undefined) => {
    for (const a of actions) {
      if (a.type === 'openStream') streams++;
      if (a.type === 'closeStream') streams--;
      if (a.type === 'postLaunch') posts++;
      if (a.type === 'redirect') {
        redirects++;
        expect(seenReady, 'redirects only after ready').toBe(true);
        expect((a.params as { url: string }).url).toBe(snap.context.url);
      }
    }
    const state = buttonState(snap.value);
    const v = viewLaunchButton(snap, redirect ? 'page' : 'tile');
    if (state === 'ready') seenReady = true;
    // The launch's stream is open exactly while launching: released on every way out.
    expect(streams, `stream open in ${state}`).toBe(snap.matches('launching') ? 1 : 0);
    // Only an idle button can be pressed.
    expect(v.disabled).toBe(state !== 'idle');
    expect(snap.can({ type: 'press' })).toBe(state === 'idle');
    // The timer runs only while launching, and only once a launch message anchored it.
    expect(v.timerRunning).toBe(snap.matches('launching') && snap.context.timer !== undefined);
    if (state === 'ready' || state === 'redirecting')
      expect(snap.context.timer?.stoppedMs).toBeDefined();
    if (state === 'requesting') expect(posts).toBeGreaterThan(0);
    if (state === 'failed') {
      expect(snap.context.failure).toBeTruthy();
      expect(v.message).toContain(snap.context.failure);
    }
    if (state === 'failed' && prev !== 'failed') {
      if (event?.type === 'launch' && event.view.status === 'failed')
        expect(snap.context.failure).toBe(FAILURE_WORDS.capacity);
      if (event?.type === 'launch' && event.view.status === 'done')
        expect(snap.context.failure).toBe(FAILURE_WORDS.machineLost);
      if (event?.type === 'refused') expect(snap.context.failure).toBe(event.message);
      if (event?.type === 'lost') expect(snap.context.failure).toBe(LOST_WORDS);
    }
    if (state === 'idle') expect(snap.context.timer).toBeUndefined();
    if (!redirect) expect(redirects).toBe(0);
    prev = state;
  };
  check(undefined);
  for (const step of path.steps.slice(1)) {
    [snap, actions] = transition(launchButtonMachine, snap, step.event);
    check(step.event);
  }
  expect(JSON.stringify(snap.value)).toBe(JSON.stringify(path.state.value));
  if (extra) {
    [snap, actions] = transition(launchButtonMachine, snap, extra);
    check(extra);
  }
}

describe('launch button chart: invariants on every simple path', () => {
  for (const [mode, { simple }] of Object.entries(byMode)) {
    it(`given ${mode} mode, when each of ${simple.length} paths is replayed (and extended by each event), then the invariants hold at every step`, () => {
      expect(simple.length).toBeGreaterThan(20);
      for (const p of simple) {
        replay(p, mode === 'page');
        for (const e of EVENTS) replay(p, mode === 'page', e);
      }
    });
  }
});

describe('launch button chart: the timer', () => {
  function run(events: LaunchButtonEvent[], redirect = true) {
    let [snap] = initialTransition(launchButtonMachine, input(redirect));
    for (const e of events) [snap] = transition(launchButtonMachine, snap, e);
    return snap;
  }
  const start: LaunchButtonEvent[] = [
    { type: 'press' },
    { type: 'accepted', launchId: 'L1', events: '/e', region: 'fra' },
  ];

  it('given a press and a 202, when the first launch message arrives, then the timer starts (not before), anchored on the server time', () => {
    expect(run(start).context.timer).toBeUndefined();
    const snap = run([...start, launch(view('requested', 1, 2_000), 10_000)]);
    // The server says 2 s have passed since requestedAt: the anchor is 2 s before receipt.
    expect(snap.context.timer).toEqual({ anchor: 8_000 });
    expect(elapsedMs(snap.context, 10_500)).toBe(2_500);
  });

  it('given a running timer, when a reconnect replays old messages or a later message arrives, then it is not re-anchored', () => {
    const snap = run([
      ...start,
      launch(view('requested', 1, 0), 10_000),
      launch(view('requested', 1, 0), 19_000), // replayed after a reconnect
      launch(view('created', 2, 1_000), 20_000),
    ]);
    expect(snap.context.timer).toEqual({ anchor: 10_000 });
    expect(buttonState(snap.value)).toBe('created');
  });

  it('given a running timer, when the launch is ready, fails or is lost, then it stops (at the server-measured time when ready)', () => {
    const ready = run([
      ...start,
      launch(view('requested', 1, 100), 10_000),
      launch(view('ready', 2, 4_321), 99_000),
    ]);
    expect(ready.context.timer?.stoppedMs).toBe(4_321);
    expect(elapsedMs(ready.context, 1e9)).toBe(4_321);
    const failed = run([
      ...start,
      launch(view('created', 1, 500), 10_000),
      launch(view('failed', 2, 1_500, { reason: 'readyTimeout' })),
    ]);
    expect(failed.context.timer?.stoppedMs).toBe(1_500);
    expect(failed.context.failure).toBe(FAILURE_WORDS.readyTimeout);
    const lost = run([
      ...start,
      launch(view('created', 1, 500), 10_000),
      { type: 'lost', receivedAt: 12_000 },
    ]);
    expect(lost.context.timer?.stoppedMs).toBe(2_500);
  });

  it('given a started launch, when an older message or another launch arrives, then the button never moves backwards', () => {
    const snap = run([
      ...start,
      launch(view('started', 3, 2_000)),
      launch(view('created', 2, 1_000)),
      launch(view('ready', 9, 3_000, { launchId: 'someone-else' })),
    ]);
    expect(buttonState(snap.value)).toBe('started');
    expect(snap.context.version).toBe(3);
  });

  it('given a ready launch without a URL, when the redirect delay passes, then it stays on the page instead of redirecting to nowhere', () => {
    const snap = run([...start, launch(view('ready', 1, 1_000, { url: undefined }))]);
    expect(buttonState(snap.value)).toBe('ready');
    const [after, actions] = transition(launchButtonMachine, snap, {
      type: 'xstate.after.redirectDelay.launchButton.ready',
    } as never);
    expect(buttonState(after.value)).toBe('ready');
    expect(actions.some((a) => a.type === 'redirect')).toBe(false);
  });
});

describe('launch button chart: real timers', () => {
  it('given a failure or a success, when its configured delay passes, then the button resets to idle', async () => {
    const actor = createActor(launchButtonMachine, {
      input: {
        ...input(true),
        timing: { failureResetMs: 30, successResetMs: 60, redirectDelayMs: 10 },
      },
    }).start();
    actor.send({ type: 'press' });
    actor.send({ type: 'refused', message: 'no' });
    expect(buttonState(actor.getSnapshot().value)).toBe('failed');
    await expect
      .poll(() => buttonState(actor.getSnapshot().value), { timeout: 2_000 })
      .toBe('idle');
    actor.send({ type: 'press' });
    actor.send({ type: 'accepted', launchId: 'L1', events: '/e', region: 'fra' });
    actor.send(launch(view('ready', 1, 1_000)));
    await expect
      .poll(() => buttonState(actor.getSnapshot().value), { timeout: 2_000 })
      .toBe('redirecting');
    await expect
      .poll(() => buttonState(actor.getSnapshot().value), { timeout: 2_000 })
      .toBe('idle');
    actor.stop();
  });
});

describe('launch button view', () => {
  function at(events: LaunchButtonEvent[], redirect: boolean) {
    let [snap] = initialTransition(launchButtonMachine, input(redirect));
    for (const e of events) [snap] = transition(launchButtonMachine, snap, e);
    return snap;
  }
  const start: LaunchButtonEvent[] = [
    { type: 'press' },
    { type: 'accepted', launchId: 'L1', events: '/e', region: 'fra' },
  ];
  const city = (c: string) => (c === 'fra' ? 'Frankfurt' : c);

  it('given the page, when idle, asking, created, ready or failed, then it says what is happening, naming the machine and the city', () => {
    expect(viewLaunchButton(at([], true), 'page').message).toBe(
      'Press the button to start a machine.',
    );
    expect(viewLaunchButton(at([{ type: 'press' }], true), 'page').message).toMatch(/Asking/);
    expect(
      viewLaunchButton(at([...start, launch(view('created', 1, 900))], true), 'page', city).message,
    ).toBe('Machine m-1 created in Frankfurt. Booting it up…');
    const ready = viewLaunchButton(
      at([...start, launch(view('ready', 1, 3_000))], true),
      'page',
      city,
    );
    expect(ready.message).toMatch(/ready! Taking you there/);
    expect(ready.link).toBe('http://useless.test/machine?instance=m-1');
    expect(ready.ownRegion).toBe('fra');
    const failed = viewLaunchButton(
      at([...start, launch(view('failed', 1, 900, { reason: 'flyError' }))], true),
      'page',
    );
    expect(failed.message).toBe(`Launch failed: ${FAILURE_WORDS.flyError}`);
    expect(failed.ownRegion).toBeUndefined();
  });

  it('given a dashboard tile, when launching, ready or refused, then it shows Launching…, Launched in m:ss.t, or Failed: reason', () => {
    expect(viewLaunchButton(at([{ type: 'press' }], false), 'tile').label).toBe('Launching…');
    expect(
      viewLaunchButton(at([...start, launch(view('ready', 1, 3_400))], false), 'tile').label,
    ).toBe('Launched in 0:03.4');
    const failed = viewLaunchButton(
      at([{ type: 'press' }, { type: 'refused', message: 'No room.' }], false),
      'tile',
    );
    expect(failed.label).toBe('Failed');
    expect(failed.message).toBe('Failed: No room.');
  });
});
