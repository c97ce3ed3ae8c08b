import { describe, expect, it } from 'vitest';
import { escapeHtml, markup, jsonIsland, raw, safeUrl } from '../../../src/where/views/html.js';

describe('html escaping', () => {
  it('escapes the five characters that matter in text and quoted attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  it('escapes every interpolated value, nested arrays included, and passes SafeHtml through', () => {
    const evil = '"><img src=x onerror=alert(1)>';
    const out =
      markup`<p title="${evil}">${[evil, [evil]]}${raw('<b>ok</b>')}${null}${undefined}${false}${0}</p>`.toString();
    expect(out).not.toContain('<img');
    expect(out).toContain('<b>ok</b>');
    expect(out).toContain('&quot;&gt;&lt;img');
    expect(out.endsWith('0</p>')).toBe(true);
  });

  it('keeps JSON islands closed whatever the strings inside say', () => {
    const island = jsonIsland('cfg', {
      s: '</script><script>alert(1)</script>',
      t: '<!--',
      u: '\u2028',
    }).toString();
    expect(island.match(/<\/script>/g)).toHaveLength(1);
    expect(island).not.toContain('<!--');
    const json = island.slice(island.indexOf('>') + 1, island.lastIndexOf('</script>'));
    expect(JSON.parse(json)).toEqual({
      s: '</script><script>alert(1)</script>',
      t: '<!--',
      u: '\u2028',
    });
  });

  it('only lets http(s) and same-site paths become links', () => {
    expect(safeUrl('https://useless-machine.fly.dev/machine?instance=abc')).toBe(
      'https://useless-machine.fly.dev/machine?instance=abc',
    );
    expect(safeUrl('/launches/1')).toBe('/launches/1');
    expect(safeUrl('javascript:alert(1)')).toBeUndefined();
    expect(safeUrl('data:text/html,hi')).toBeUndefined();
    expect(safeUrl('//evil.example/x')).toBeUndefined();
    expect(safeUrl('not a url')).toBeUndefined();
  });
});
