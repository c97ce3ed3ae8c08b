/** machines/README.md draws every transition of every chart (it fails when a chart drifts). */
import { readFileSync } from 'node:fs';
import type { AnyStateMachine } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { describe, expect, it } from 'vitest';
import { autospawnerMachine, launchMachine, poolMachine, vmMachine } from '../../machines/index.js';

const readme = readFileSync('machines/README.md', 'utf8');

/** `always` edges are drawn with what their guard means in that chart. */
function edges(m: AnyStateMachine, always = '(visitors present)'): string[] {
  const out = new Set<string>();
  const short = (id: string) => id.split('.').slice(2).join('_') || 'live';
  for (const node of [m.root, ...getStateNodes(m.root)]) {
    for (const [type, defs] of node.transitions)
      for (const d of defs)
        for (const t of d.target ?? []) out.add(`${short(node.id)} --> ${short(t.id)}: ${type}`);
    for (const d of node.always ?? [])
      for (const t of d.target ?? []) out.add(`${short(node.id)} --> ${short(t.id)}: ${always}`);
  }
  return [...out];
}

describe('machines/README.md', () => {
  it.each([
    ['launch', launchMachine],
    ['vm', vmMachine],
    ['autospawner', autospawnerMachine],
    ['pool', poolMachine],
  ] as const)('draws every transition of the %s chart', (name, machine) => {
    const all = edges(machine, name === 'pool' ? '(below target)' : undefined);
    expect(all.length).toBeGreaterThan(5);
    expect(all.filter((e) => !readme.includes(e))).toEqual([]);
  });
});
