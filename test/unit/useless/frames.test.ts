/**
 * The animation's frames, pinned to the letter: the fixture holds every frame as it was drawn by
 * hand (trailing spaces trimmed), so building them from parts can never change a character.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FRAMES, FRAME_COLUMNS } from '../../../src/useless/frames.js';

function fixtureFrames(): string[] {
  const text = readFileSync(new URL('./frames.fixture.txt', import.meta.url), 'utf8');
  // Each frame is followed by one newline: before the next header, or at the end of the file.
  return text
    .split(/^=== frame \d\d\n/m)
    .slice(1)
    .map((frame) =>
      frame
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => line.padEnd(FRAME_COLUMNS, ' '))
        .join('\n'),
    );
}

describe('frames', () => {
  it('equal the hand-drawn frames of the fixture, character for character', () => {
    const expected = fixtureFrames();
    expect(expected).toHaveLength(14);
    expect(FRAMES).toHaveLength(expected.length);
    FRAMES.forEach((frame, i) => expect(frame, `frame ${i}`).toBe(expected[i]));
  });

  it('hash to the digest of the hand-drawn frames (so the fixture cannot drift with them)', () => {
    const digest = createHash('sha256').update(FRAMES.join('\n\u0000\n')).digest('hex');
    expect(digest).toBe('b9fcde1f086d5da6344a3a50df2bca3d049fd2f1e867fc2dc6f4d7af3f1bd5d1');
  });
});
