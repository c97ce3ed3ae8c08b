/**
 * The test tiers hold together: every test file runs in exactly one tier (test/tiers.ts, which
 * vitest.config.ts turns into projects), and nothing the unit tier loads can start a process or a browser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
// The glob library vitest itself uses to find a project's files.
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { TIERS, type Tier } from '../tiers.js';

const tiers = Object.keys(TIERS) as Tier[];
const inTier = (tier: Tier, pattern?: string): string[] =>
  globSync(pattern ? [pattern] : [...TIERS[tier]], { expandDirectories: false });

const testFiles = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => join('test', f))
  .sort();

/** Modules whose loading means a child process or a browser. */
const FORBIDDEN = /^(node:)?child_process$|^playwright(-core)?$/;

/** Specifiers a module loads at run time (type-only imports load nothing). */
function runtimeImports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;'"]*?from\s+'([^']+)'/gm))
    if (!m[1]) out.push(m[2]!);
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm))
    out.push((m[1] ?? m[2])!);
  return out;
}

/** Every forbidden module reached from `file` through the repository's own modules, with the path. */
function forbiddenReach(file: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const walk = (path: string, trail: string[]): void => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const spec of runtimeImports(readFileSync(path, 'utf8'))) {
      if (FORBIDDEN.test(spec)) found.push([...trail, spec].join(' → '));
      if (!spec.startsWith('.')) continue;
      const target = normalize(join(dirname(path), spec)).replace(/\.js$/, '.ts');
      walk(target, [...trail, target]);
    }
  };
  walk(file, [file]);
  return found;
}

describe('the test tiers', () => {
  it('put every test file in exactly one tier', () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const owners = new Map(testFiles.map((f) => [f, [] as Tier[]]));
    for (const tier of tiers) for (const f of inTier(tier)) owners.get(f)?.push(tier);
    const wrong = [...owners]
      .filter(([, t]) => t.length !== 1)
      .map(([f, t]) => `${f}: ${t.join(', ')}`);
    expect(wrong).toEqual([]);
  });

  it('name only files that exist (a pattern that matches nothing is left over from a move)', () => {
    const empty = tiers.flatMap((tier) =>
      TIERS[tier].filter((p) => inTier(tier, p).length === 0).map((p) => `${tier}: ${p}`),
    );
    expect(empty).toEqual([]);
  });

  it('keep child processes and browsers out of the unit tier, through every module it loads', () => {
    const reached = inTier('unit').flatMap(forbiddenReach);
    expect(reached).toEqual([]);
  });
});
