/**
 * `npm run bench [-- <section>... | --quick]`: the benchmark suite. Each section prints one table
 * where every figure sits beside a floor measured in the same run, as a ratio, with its target and
 * PASS/MISS; results also go to bench/results/latest.json. Sections: runtime vm e2e sse nats pool
 * soak (pool and soak run only when named: they take minutes, see docs/benchmarks.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  installCleanupHooks,
  liveChildren,
  runAllCleanups,
  wasInterrupted,
} from './lib/cleanup.js';
import type { SectionContext, SectionDef } from './lib/context.js';
import { renderSection, type SectionResult } from './lib/report.js';
import { hasGc } from './lib/stats.js';
import { e2eSection } from './sections/e2e.js';
import { natsSection } from './sections/nats.js';
import { poolSection } from './sections/pool.js';
import { runtimeSection } from './sections/runtime.js';
import { soakSection } from './sections/soak.js';
import { sseSection } from './sections/sse.js';
import { vmSection } from './sections/vm.js';

const SECTIONS: readonly SectionDef[] = [
  runtimeSection,
  vmSection,
  e2eSection,
  sseSection,
  natsSection,
  poolSection,
  soakSection,
];
/** Sections run only when named (long): `npm run bench -- soak`. */
const ON_REQUEST = new Set(['soak', 'pool']);

/** The commit measured, and product files that differed from it (others edit the same tree). */
function revision(): { commit: string; dirty: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync(
      'git',
      ['status', '--porcelain', '--', 'src', 'machines', 'package.json'],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

function usage(): never {
  process.stderr.write(
    `usage: npm run bench [-- [--quick] [${SECTIONS.map((s) => s.name).join('|')}]...]\n` +
      SECTIONS.map((s) => `  ${s.name.padEnd(8)} ${s.title}`).join('\n') +
      '\n  --quick  small sizes: checks the code paths, the figures mean nothing\n',
  );
  process.exit(2);
}

async function main(): Promise<void> {
  installCleanupHooks();
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  if (args.some((a) => a === '--help' || a === '-h')) usage();
  for (const n of names) if (!SECTIONS.some((s) => s.name === n)) usage();
  const chosen =
    names.length === 0
      ? SECTIONS.filter((s) => !ON_REQUEST.has(s.name))
      : SECTIONS.filter((s) => names.includes(s.name));
  if (!hasGc()) {
    process.stderr.write('bench: run with node --expose-gc (npm run bench does)\n');
    process.exit(2);
  }

  const started = new Date();
  const rev = revision();
  const host = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: process.platform,
  };
  process.stdout.write(
    `WhereMachines benchmarks — ${started.toISOString()} — commit ${rev.commit}${rev.dirty.length ? ` + ${rev.dirty.length} uncommitted product file(s)` : ''} — node ${process.version}, ${host.cpus} CPU (${host.cpuModel ?? '?'}), load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}${quick ? ' — QUICK (figures not meaningful)' : ''}\n`,
  );
  let sectionStart = performance.now();
  const ctx: SectionContext = {
    quick,
    shared: {},
    progress: (line) =>
      process.stderr.write(
        `  … [+${((performance.now() - sectionStart) / 1000).toFixed(1)} s] ${line}\n`,
      ),
  };
  const results: (SectionResult & { loadBefore: number[]; loadAfter: number[]; error?: string })[] =
    [];
  for (const s of chosen) {
    if (wasInterrupted()) break;
    const t = performance.now();
    sectionStart = t;
    const loadBefore = loadavg();
    let result: SectionResult & { loadBefore: number[]; loadAfter: number[]; error?: string };
    try {
      const out = await s.run(ctx);
      result = {
        name: s.name,
        title: s.title,
        ...out,
        seconds: (performance.now() - t) / 1000,
        loadBefore,
        loadAfter: loadavg(),
      };
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      result = {
        name: s.name,
        title: s.title,
        rows: [],
        notes: [],
        data: {},
        skipped: `FAILED: ${message}`,
        error: message,
        seconds: (performance.now() - t) / 1000,
        loadBefore,
        loadAfter: loadavg(),
      };
    }
    // Whatever the section left registered (it should have released everything) goes now.
    await runAllCleanups();
    results.push(result);
    process.stdout.write(renderSection(result) + '\n');
    process.stdout.write(
      `  · load average before/after: ${loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${result.loadAfter.map((l) => l.toFixed(2)).join(' ')}\n`,
    );
  }

  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  const summary = results.flatMap((r) =>
    r.rows.map((row) => ({ section: r.name, metric: row.metric, status: row.status })),
  );
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: started.toISOString(),
        finishedAt: new Date().toISOString(),
        command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
        quick,
        revision: rev,
        host,
        sections: results,
        pass: summary.filter((s) => s.status === 'PASS').length,
        miss: summary.filter((s) => s.status === 'MISS').map((s) => `${s.section}: ${s.metric}`),
      },
      null,
      2,
    ) + '\n',
  );
  const misses = summary.filter((s) => s.status === 'MISS').length;
  const failed = results.filter((r) => r.error).length;
  process.stdout.write(
    `\n${summary.filter((s) => s.status === 'PASS').length} PASS, ${misses} MISS${failed ? `, ${failed} section(s) FAILED` : ''} — results in ${file}\n`,
  );
  if (liveChildren() > 0)
    process.stderr.write(
      `bench: ${liveChildren()} child process(es) still alive at the end; killing them\n`,
    );
  // A MISS is a finding, not a failure of the suite; a section that crashed is.
  process.exit(failed ? 1 : 0);
}

main().catch(async (err: unknown) => {
  process.stderr.write(
    `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  await runAllCleanups();
  process.exit(1);
});
