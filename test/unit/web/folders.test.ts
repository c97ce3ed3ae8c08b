/**
 * The page code's three folders and who may import whom: `views/` (server HTML) and `web/` (the
 * browser bundles) never reach into each other; what both need lives in `ui/`, which runs anywhere.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const WHERE = new URL('../../../src/where/', import.meta.url);

function sources(folder: string): { file: string; text: string }[] {
  const dir = new URL(`${folder}/`, WHERE);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${folder}/${f}`, text: readFileSync(new URL(f, dir), 'utf8') }));
}

function imports(text: string): string[] {
  return [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)].map((m) => m[1]!);
}

/** Every `file → import` of a folder that matches. */
function offending(folder: string, bad: RegExp): string[] {
  return sources(folder).flatMap(({ file, text }) =>
    imports(text)
      .filter((i) => bad.test(i))
      .map((i) => `${file} → ${i}`),
  );
}

describe('where/ui, views and web', () => {
  it('finds the imports it checks', () => {
    expect(offending('views', /\/ui\//).length).toBeGreaterThan(0);
    expect(offending('web', /\/ui\//).length).toBeGreaterThan(0);
  });

  it('server views do not import the browser folder', () => {
    expect(offending('views', /^\.\.\/web\//)).toEqual([]);
  });

  it('browser code does not import the server views', () => {
    expect(offending('web', /^\.\.\/views\//)).toEqual([]);
  });

  it('shared code imports neither side, nor Node', () => {
    expect(offending('ui', /^\.\.\/(web|views)\/|^node:/)).toEqual([]);
  });

  it('shared code touches no DOM', () => {
    const dom = /\b(document|window|EventSource|HTMLElement|fetch)\b/;
    const hits = sources('ui').filter(({ text }) =>
      text
        .split('\n')
        .filter((l) => !/^\s*(\*|\/\/|\/\*)/.test(l))
        .some((l) => dom.test(l)),
    );
    expect(hits.map((h) => h.file)).toEqual([]);
  });
});
