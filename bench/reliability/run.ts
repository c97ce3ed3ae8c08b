/**
 * `npm run reliability`: every reliability goal G1–G15 measured on this machine. Runs the existing
 * tests that measure a goal (vitest, JSON reporter, counting passes), then the figure scripts in
 * this folder, and prints the table docs/reliability.md records.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table, type Row } from './lib.js';
import { measure as callbacksFuzz } from './callbacksFuzz.js';
import { measure as clockSkew } from './clockSkew.js';
import { measure as floods } from './floods.js';
import { measure as modelRun } from './modelRun.js';
import { measure as natsRestarts } from './natsRestarts.js';
import { measure as partition } from './partition.js';
import { measure as publicFuzz } from './publicFuzz.js';
import { measure as sseReconnect } from './sseReconnect.js';

interface TestGoal {
  goal: string;
  files: string[];
  /** What the passing tests show, in the goal's terms. */
  figure: string;
  /** Verdict when every test passes (the goal may ask for more than the tests do). */
  whenGreen: Row['verdict'];
  command?: string;
}

const CHAOS = 'see npm run chaos (docs/chaos.md)';

const TEST_GOALS: TestGoal[] = [
  {
    goal: 'G1 SIGKILL mid-launch',
    files: ['test/process/crash/runtime.crash.test.ts', 'test/process/cluster/processes.test.ts'],
    figure:
      'in-process/process tests: 1 SIGKILL mid-wait → 1 machine, destroyed; owner SIGKILLed → launch completed by the leader',
    whenGreen: 'see chaos',
    command: CHAOS,
  },
  {
    goal: 'G2 restart safety of timers',
    files: ['test/process/crash/runtime.crash.test.ts', 'test/integration/cluster/regions.test.ts'],
    figure:
      "a launch killed in waitingReady fails at its original deadline after restart; a dead owner's deadline fires on the leader",
    whenGreen: 'see chaos',
    command: CHAOS,
  },
  {
    goal: 'G5 Fly API faults',
    files: ['test/integration/fly/faults.test.ts'],
    figure:
      'client: 429 waits Retry-After; 5xx/resets retried on idempotent calls, creates never retried blind; seeded storm of every fault → only typed FlyApiErrors; pacing never draws a 429',
    whenGreen: 'see chaos',
    command: CHAOS,
  },
  {
    goal: 'G6 VM never ready',
    files: ['test/integration/where/launch.test.ts', 'test/unit/where/reconciler.test.ts'],
    figure:
      'a silent VM fails its launch at the ready deadline and is destroyed (0 left); orphans with an unknown/over launch destroyed by the reconciler',
    whenGreen: 'PASS',
  },
  {
    // The 1,000-sequence model run is a second G13 row, from bench/reliability/modelRun.ts.
    goal: 'G13 determinism / replay (golden histories)',
    files: [
      'test/unit/reliability/golden.test.ts',
      'test/model/launch.model.test.ts',
      'test/model/vm.model.test.ts',
      'test/model/autospawner.model.test.ts',
    ],
    figure:
      'every stored history in test/fixtures/golden (175 launch.v1, 56 vm.v1, 126 autospawner.v1: every model path, every final state) decodes and folds, replayed and at boot, to its recorded final snapshot; every generated path folds to the live actor',
    whenGreen: 'PASS',
  },
  {
    goal: 'G14 XState coverage',
    files: [
      'test/model/launch.model.test.ts',
      'test/model/vm.model.test.ts',
      'test/model/autospawner.model.test.ts',
    ],
    figure:
      '100 % of states and transitions of launch, vm and autospawner charts reached by xstate/graph paths',
    whenGreen: 'PASS',
  },
  {
    goal: 'G15 security gates',
    files: [
      'test/integration/where/launch.test.ts',
      'test/integration/where/debug.test.ts',
      'test/integration/where/callbacks.test.ts',
    ],
    figure:
      'cross-site POST (bad Origin / Sec-Fetch-Site) → 403; every debug route without/with a wrong token → 401; debug output holds 0 secrets; spoofed Fly-Client-IP from an untrusted peer changes no rate-limit key',
    whenGreen: 'PASS',
  },
];

function runTests(files: string[]): { passed: number; failed: number; skipped: number } {
  const dir = mkdtempSync(join(tmpdir(), 'wm-rel-'));
  const out = join(dir, 'report.json');
  try {
    spawnSync('npx', ['vitest', 'run', ...files, '--reporter=json', `--outputFile=${out}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: process.env,
    });
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
    };
    return { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests };
  } catch {
    return { passed: 0, failed: 1, skipped: 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
const cache = new Map<string, ReturnType<typeof runTests>>();
for (const g of TEST_GOALS) {
  const key = g.files.join(' ');
  const res = cache.get(key) ?? runTests(g.files);
  cache.set(key, res);
  const green = res.failed === 0 && res.skipped === 0 && res.passed > 0;
  rows.push({
    goal: g.goal,
    command: g.command ?? `npx vitest run ${key}`,
    figure: `${res.passed} passed, ${res.failed} failed, ${res.skipped} skipped: ${g.figure}`,
    verdict: green ? g.whenGreen : 'MISS',
  });
}
for (const m of [
  partition,
  publicFuzz,
  sseReconnect,
  floods,
  clockSkew,
  natsRestarts,
  callbacksFuzz,
  modelRun,
])
  rows.push(...(await m()));
const order = (r: Row) => Number(/^G(\d+)/.exec(r.goal)?.[1] ?? 99);
console.log(table(rows.sort((a, b) => order(a) - order(b))));
