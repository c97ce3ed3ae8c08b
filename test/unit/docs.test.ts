/** Docs stay true: every fact type is documented in docs/events.md, and nothing else is. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FACT_TYPES } from '../../machines/facts.js';

const events = readFileSync('docs/events.md', 'utf8');

describe('docs/events.md', () => {
  it('documents every fact type', () => {
    const missing = FACT_TYPES.filter((t) => !events.includes(`\`${t}\``));
    expect(missing).toEqual([]);
  });

  it('documents no type the catalogue does not have', () => {
    const documented = [...events.matchAll(/^\| `([a-z]+\.[A-Za-z]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.length).toBeGreaterThan(15);
    expect(documented.filter((t) => !(FACT_TYPES as string[]).includes(t))).toEqual([]);
  });
});
