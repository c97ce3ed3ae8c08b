// One supported Node: what developers install (.nvmrc), what CI runs (.ci/run reads .nvmrc), what
// the image ships (Dockerfile) and what npm is told (engines) name the same major (ADR 0019).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (p: string) => readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8');
const major = read('.nvmrc').trim().split('.')[0]!;

describe('the supported Node version', () => {
  it('is one major in .nvmrc, the image, engines and the bundles', () => {
    expect(major).toMatch(/^\d+$/);
    expect(read('Dockerfile')).toMatch(new RegExp(`^ARG NODE_VERSION=${major}$`, 'm'));
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines;
    expect(engines.node).toMatch(new RegExp(`^>=${major}\\.`));
    const targets = [...read('scripts/build.mjs').matchAll(/target: 'node(\d+)'/g)].map(
      (m) => m[1],
    );
    expect(targets.length).toBeGreaterThan(0);
    expect(new Set(targets)).toEqual(new Set([major]));
  });

  it('is the Node CI runs the suite on', () => {
    expect(read('.ci/run')).toContain('.nvmrc');
    // Under CI the suite itself runs on the supported major (.ci/run fetches it if the box's is older).
    if (process.env.CI === 'true') expect(process.versions.node.split('.')[0]).toBe(major);
  });
});
