/**
 * Model-based testing for charts: generate paths that reach every (abstracted) state and then take
 * every event each state accepts, run each path live in an actor (recording which transition
 * definitions fired) and as a pure fold, and hand both to the invariant checks.
 */
import {
  createActor,
  initialTransition,
  transition,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type AnyTransitionDefinition,
  type Snapshot,
  type SnapshotFrom,
} from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { encodeTime } from 'ulid';
import { expect } from 'vitest';
import type { ChartEvent, FactData, FactType } from '../../machines/facts.js';
import type { TimerTable } from '../../machines/effects.js';
import { decider } from '../../src/runtime/decide.js';
import { fold, type Folded } from '../support/charts.js';

export interface ModelPath<M extends AnyStateMachine> {
  events: ChartEvent[];
  description: string;
  live: SnapshotFrom<M>;
  folded: Folded<M>;
  fired: Set<AnyTransitionDefinition>;
}

/** A deterministic event id for generated facts (ULID time part from `at`). */
export const idAt = (at: number, salt = 0): string =>
  encodeTime(at, 10) + salt.toString(32).toUpperCase().padStart(16, '0');

export function explore<M extends AnyStateMachine>(
  machine: M,
  opts: {
    events: (snapshot: SnapshotFrom<M>) => ChartEvent[];
    abstract: (snapshot: SnapshotFrom<M>) => unknown;
  },
): ModelPath<M>[] {
  const shortest = getShortestPaths(machine, {
    events: (s) => opts.events(s as SnapshotFrom<M>) as never,
    serializeState: (s) => JSON.stringify(opts.abstract(s as SnapshotFrom<M>)),
  });
  // Every reachable state, then every event it accepts: that reaches every transition.
  const eventLists: ChartEvent[][] = [];
  for (const p of shortest) {
    const base = p.steps
      .map((s) => s.event as unknown as ChartEvent)
      .filter((e) => !e.type.startsWith('xstate.'));
    eventLists.push(base);
    const end = p.state as AnyMachineSnapshot;
    for (const e of opts.events(end as SnapshotFrom<M>))
      if (end.status === 'active' && end.can(e)) eventLists.push([...base, e]);
  }
  return eventLists.map((events) => runPath(machine, events));
}

export function runPath<M extends AnyStateMachine>(machine: M, events: ChartEvent[]): ModelPath<M> {
  const fired = new Set<AnyTransitionDefinition>();
  const actor = createActor(machine as AnyStateMachine, {
    inspect: (ev) => {
      if (ev.type === '@xstate.microstep') for (const t of ev._transitions) fired.add(t);
    },
  });
  actor.start();
  for (const e of events) {
    const snap = actor.getSnapshot() as AnyMachineSnapshot;
    if (snap.status === 'active' && snap.can(e)) actor.send(e);
  }
  const live = actor.getSnapshot() as SnapshotFrom<M>;
  actor.stop();
  return {
    events,
    description: events.map((e) => e.type).join(' → ') || '(initial)',
    live,
    folded: fold(machine, events),
    fired,
  };
}

/** Every transition definition of a chart (event transitions and eventless ones). */
export function allTransitions(
  machine: AnyStateMachine,
): { def: AnyTransitionDefinition; label: string }[] {
  const out: { def: AnyTransitionDefinition; label: string }[] = [];
  for (const node of getStateNodes(machine.root)) {
    for (const [type, defs] of node.transitions) {
      defs.forEach((def, i) => {
        // `on: { event: undefined }` masks an ancestor's handler: a forbidden transition, never taken.
        if (!def.target && def.actions.length === 0 && !def.guard) return;
        out.push({
          def,
          label: `${node.id} --${type}[${i}]--> ${def.target?.map((t) => t.id).join(',') ?? '(self)'}`,
        });
      });
    }
    (node.always ?? []).forEach((def, i) =>
      out.push({
        def,
        label: `${node.id} --always[${i}]--> ${def.target?.map((t) => t.id).join(',') ?? '(self)'}`,
      }),
    );
  }
  return out;
}

export function allStateIds(machine: AnyStateMachine): string[] {
  return getStateNodes(machine.root).map((n) => n.id);
}

/** State node ids active in a snapshot (the whole path from the root). */
export function activeIds(snapshot: { _nodes: { id: string }[] }): string[] {
  return snapshot._nodes.map((n) => n.id);
}

/**
 * The deadlines a chart recorded (its context's `timers`, the only record of them) before and after
 * each fact of a path it accepted.
 */
export function deadlineSteps(
  machine: AnyStateMachine,
  events: readonly ChartEvent[],
): { event: ChartEvent; before: TimerTable; after: TimerTable }[] {
  const timersOf = (s: AnyMachineSnapshot) => (s.context as { timers: TimerTable }).timers;
  let [snap] = initialTransition(machine);
  const out: { event: ChartEvent; before: TimerTable; after: TimerTable }[] = [];
  for (const event of events) {
    if (snap.status !== 'active' || !snap.can(event)) continue;
    const before = timersOf(snap);
    [snap] = transition(machine, snap, event);
    out.push({ event, before, after: timersOf(snap) });
  }
  return out;
}

/** A generated fact with a deterministic id. */
export function fact<T extends FactType>(
  type: T,
  data: FactData<T>,
  at: number,
  salt: number,
): ChartEvent {
  return { ...(data as object), type, at, eventId: idAt(at, salt) } as ChartEvent;
}

/** The paths, together, reach every state and take every transition of the chart. */
export function expectFullCoverage(
  machine: AnyStateMachine,
  paths: readonly ModelPath<AnyStateMachine>[],
): void {
  const states = new Set(paths.flatMap((p) => activeIds(p.live as never)));
  const missingStates = allStateIds(machine).filter((id) => !states.has(id));
  expect(missingStates, `unreached states: ${missingStates.join(', ')}`).toEqual([]);
  const fired = new Set(paths.flatMap((p) => [...p.fired]));
  const missing = allTransitions(machine)
    .filter((t) => !fired.has(t.def))
    .map((t) => t.label);
  expect(missing, `untaken transitions:\n${missing.join('\n')}`).toEqual([]);
}

/**
 * The runtime's decider (one reused scope per chart, docs/adr/0017-decider-fast-path.md) must step
 * exactly like XState's public `initialTransition()` and `transition()`: step by step on every
 * path, the same snapshot (persisted form, state value, status and tags), the same answer to
 * `can()` for the next fact, and the same actions named, in order. One decider serves every path,
 * so anything its shared scope kept from one path to the next would show here.
 */
export function expectDeciderAgrees(
  machine: AnyStateMachine,
  paths: readonly ModelPath<AnyStateMachine>[],
): void {
  const d = decider(machine);
  const named = (actions: readonly { type: string; params?: unknown }[]) =>
    actions.map((a) => ({ type: a.type, params: a.params }));
  const same = (fast: AnyMachineSnapshot, pub: AnyMachineSnapshot, where: string) => {
    expect(machine.getPersistedSnapshot(fast), where).toEqual(machine.getPersistedSnapshot(pub));
    expect(fast.value, where).toEqual(pub.value);
    expect(fast.status, where).toBe(pub.status);
    expect([...fast.tags].sort(), where).toEqual([...pub.tags].sort());
  };
  let steps = 0;
  for (const p of paths) {
    let [fast, fastActions] = d.initial();
    let [pub, pubActions] = initialTransition(machine);
    same(fast, pub, `${p.description} (initial)`);
    expect(named(fastActions), p.description).toEqual(named(pubActions));
    for (const [i, e] of p.events.entries()) {
      const where = `${p.description} @${i} ${e.type}`;
      const open = fast.status === 'active' && fast.can(e);
      expect(open, where).toBe(pub.status === 'active' && pub.can(e));
      if (!open) continue;
      [fast, fastActions] = d.next(fast, e);
      [pub, pubActions] = transition(machine, pub, e);
      same(fast, pub, where);
      expect(named(fastActions), where).toEqual(named(pubActions));
      steps++;
    }
    same(fast, p.folded.snapshot, `${p.description} (end, against the test fold)`);
    // A boot snapshot restores through the same scope: its JSON comes back as the same snapshot.
    const persisted = JSON.parse(
      JSON.stringify(machine.getPersistedSnapshot(fast)),
    ) as Snapshot<unknown>;
    same(d.restore(persisted), fast, `${p.description} (restored from JSON)`);
  }
  // Every path is a step or more past the initial snapshot (the explorer made sure of that).
  expect(steps).toBeGreaterThanOrEqual(paths.length - 1);
}
