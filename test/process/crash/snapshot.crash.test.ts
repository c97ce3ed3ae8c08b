/**
 * A boot snapshot survives SIGKILL: a real child process (snapshot.crash.child.ts) writes
 * snapshots in a loop and dies at seeded moments, many inside a write. Afterwards the snapshot file
 * is whole and is the last one acknowledged or the one being written (never a part, never older
 * than what was acknowledged); with none acknowledged, the one from before or none at all.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSnapshot } from '../../../src/runtime/snapshot.js';

const SEED = Number(process.env.WM_CRASH_SEED ?? 20260601);

/** mulberry32: the kill moments come from the seed, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const children: ReturnType<typeof spawn>[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0))
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Run the child until `killAfterMs` past its first snapshot write; return what it acknowledged. */
async function writeAndDie(path: string, startGeneration: number, killAfterMs: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve('test/process/crash/snapshot.crash.child.ts')],
    {
      env: {
        ...process.env,
        SNAPSHOT_PATH: path,
        START_GENERATION: String(startGeneration),
        LAUNCHES: '1500',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const acked: { generation: number; actors: number }[] = [];
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await new Promise<void>((ready, fail) => {
    child.on('exit', () => fail(new Error('child exited early')));
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l === 'ready') {
        ready();
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
      const m = /^wrote (\d+) (\d+)$/.exec(l);
      if (m) acked.push({ generation: Number(m[1]), actors: Number(m[2]) });
    });
  });
  await exited;
  return acked;
}

describe(`boot snapshot under SIGKILL (seed ${SEED})`, () => {
  const random = rng(SEED);
  const delays = Array.from({ length: 6 }, () => Math.floor(random() * 400));

  it.each(delays.map((d, i) => [i, d] as const))(
    'never leaves a snapshot boot trusts wrongly (kill #%i, %i ms into writing)',
    async (_, delay) => {
      const dir = mkdtempSync(join(tmpdir(), 'wm-snapcrash-'));
      dirs.push(dir);
      const path = join(dir, 'snapshot.json');
      // First life: no snapshot before it. Second life: the first one's snapshot is "the old one".
      let before: number | undefined;
      for (const life of [0, 1]) {
        const start = life === 0 ? 1 : 100_000;
        const acked = await writeAndDie(path, start, delay + life * 37);
        const last = acked.at(-1);
        if (!existsSync(path)) {
          // Nothing acknowledged and nothing before: none is a correct answer.
          expect(last).toBeUndefined();
          expect(before).toBeUndefined();
          continue;
        }
        const res = decodeSnapshot(readFileSync(path, 'utf8'), { store: 'file' });
        expect(res.ok, res.ok ? '' : res.why).toBe(true);
        if (!res.ok) return;
        const g = res.takenAt;
        const written = res.snapshot.records.length;
        if (last) {
          // The last acknowledged write or the one after it (killed after its rename, before its line).
          expect([last.generation, last.generation + 1]).toContain(g);
          expect(written).toBe(g === last.generation ? last.actors : last.actors + 1);
        } else if (g >= start) {
          // A write finished but its line was cut by the kill: it is the first of this life.
          expect(g).toBe(start);
        } else {
          // Nothing new became durable: the old snapshot stands, untouched.
          expect(g).toBe(before);
        }
        before = g;
      }
    },
    60_000,
  );
});
