/** The animation data, its pacing, and the server-rendered page (which must work without JS). */
import { describe, expect, it } from 'vitest';
import { FRAMES, FRAME_COLUMNS, FRAME_LINES } from '../../../src/useless/frames.js';
import { gonePage, launchPageUrl, machinePage, escapeHtml } from '../../../src/useless/page.js';
import {
  FIRST_DWELL_MS,
  HANG_FIRE_MS,
  PRESS_FRAME,
  PRESS_MS,
  SEQUENCE,
} from '../../../src/useless/sequence.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { Viewers } from '../../../src/useless/viewers.js';

describe('frames', () => {
  it('are 14 plain-ASCII frames of exactly 32 lines × 84 columns', () => {
    expect(FRAMES).toHaveLength(14);
    for (const f of FRAMES) {
      const lines = f.split('\n');
      expect(lines).toHaveLength(FRAME_LINES);
      for (const l of lines) expect(l).toHaveLength(FRAME_COLUMNS);
      expect(f).toMatch(/^[\x20-\x7e\n]+$/);
    }
  });
  it('begin and end with a closed box, and the switch really flips', () => {
    expect(new Set(FRAMES).size).toBe(FRAMES.length);
    expect(FRAMES[0]).toContain('+======');
    expect(FRAMES[0]).not.toContain('. . .');
    expect(FRAMES[FRAMES.length - 1]).not.toContain('. . .');
  });
});

describe('sequence', () => {
  it('dwells, runs, hangs fire before the press, and turns the lights off right after it', () => {
    expect(SEQUENCE.map((s) => s.frame)).toEqual(FRAMES.map((_, i) => i));
    expect(SEQUENCE[1]!.after).toBe(FIRST_DWELL_MS);
    expect(SEQUENCE[PRESS_FRAME]!.after).toBe(HANG_FIRE_MS);
    expect(SEQUENCE[PRESS_FRAME + 1]!.after).toBe(PRESS_MS);
    expect(SEQUENCE.filter((s) => s.lights === 'on').map((s) => s.frame)).toEqual([
      0, 1, 2, 3, 4, 5, 6,
    ]);
    expect(SEQUENCE.slice(PRESS_FRAME + 1).every((s) => s.lights === 'off')).toBe(true);
  });
});

describe('machine page', () => {
  const input = {
    machineId: 'm0self0000001',
    city: 'Amsterdam',
    homeUrl: 'http://localhost:8080/?a=1&b=2',
  };

  it('without JS: the first frame, the words, a link home, and no script', () => {
    const html = machinePage({ ...input, withScript: false });
    expect(html).toContain(escapeHtml(FRAMES[0]!));
    expect(html).toContain('You started a Useless Machine');
    expect(html).toContain('This is Fly Machine m0self0000001 in Amsterdam.');
    expect(html).toContain('href="http://localhost:8080/?a=1&#38;b=2"');
    expect(html).not.toContain('<script');
    expect(html).toContain('aria-live="polite"');
  });

  it('with JS: data for the whole sequence on the page, safe inside <script>', () => {
    const html = machinePage({
      ...input,
      city: '</script><script>alert(1)</script>',
      withScript: true,
      viewer: {
        doneUrl: '/machine/viewers/x/done',
        beatUrl: '/machine/viewers/x/beat',
        beatEveryMs: 5000,
      },
    });
    expect(html).not.toContain('</script><script>alert(1)');
    const json = /<script type="application\/json" id="wm-data">(.*?)<\/script>/s.exec(html)?.[1];
    const data = JSON.parse(json!) as {
      texts: { goneHeading: string };
      homeUrl: string;
      city: string;
    };
    expect(data.texts.goneHeading).toBe('This machine is gone');
    expect(data.homeUrl).toBe(input.homeUrl);
    expect(data.city).toBe('</script><script>alert(1)</script>');
    expect(html).toContain(
      '<script type="module" src="/machine/assets/machine.js?instance=m0self0000001"></script>',
    );
  });

  it('links back to its launch’s page on the landing app, with or without JS, gone or not', () => {
    const launchUrl = launchPageUrl(input.homeUrl, '01JAAAAAAAAAAAAAAAAAAAAAAA');
    expect(launchUrl).toBe(
      'http://localhost:8080/launches/01JAAAAAAAAAAAAAAAAAAAAAAA?from=machine',
    );
    for (const html of [
      machinePage({ ...input, launchUrl, withScript: false }),
      machinePage({ ...input, launchUrl, withScript: true }),
      gonePage({ ...input, launchUrl }),
    ]) {
      expect(html).toContain(
        `<p id="launch-link" class="home"><a href="${escapeHtml(launchUrl!)}">How this launch went, fact by fact</a></p>`,
      );
    }
    expect(machinePage({ ...input, withScript: false })).not.toContain('launch-link');
    expect(launchPageUrl('not a url', 'x')).toBeUndefined();
  });

  it('the gone page shows the last frame and the way home', () => {
    const html = gonePage(input);
    expect(html).toContain('This machine is gone');
    expect(html).toContain(escapeHtml(FRAMES[FRAMES.length - 1]!));
  });
});

describe('Viewers', () => {
  it('is idle until someone comes, watching while anyone is, finished when all are done or quiet', () => {
    const clock = new ManualClock(0);
    let n = 0;
    const v = new Viewers(clock, 1000, 3, () => `viewer${String(n++).padStart(10, '0')}`);
    expect(v.state()).toEqual({ kind: 'idle' });
    const a = v.register()!;
    clock.advance(500);
    const b = v.register()!;
    expect(v.state()).toEqual({ kind: 'watching', quietAt: 1500 });
    expect(v.done(a)).toBe(true);
    expect(v.state()).toEqual({ kind: 'watching', quietAt: 1500 });
    clock.advance(400);
    expect(v.touch(b)).toBe(true);
    expect(v.state()).toEqual({ kind: 'watching', quietAt: 1900 });
    clock.advance(1000);
    expect(v.state()).toEqual({ kind: 'finished' });
    expect(v.done('nobody')).toBe(false);
    expect(v.touch('nobody')).toBe(false);
  });
  it('takes at most `max` viewers', () => {
    const v = new Viewers(new ManualClock(0), 1000, 1);
    expect(v.register()).toBeDefined();
    expect(v.register()).toBeUndefined();
  });
});
