/**
 * The Useless Machine's animation, drawn in plain ASCII: a closed box with a toggle switch; the lid
 * opens, an arm rises, flips the switch off, pulls back, and the lid closes. Data, bundled into both
 * the server (first frame, no-JS page) and the browser script (the whole sequence).
 */

/** Every frame is this many lines of this many columns (shorter lines are padded with spaces). */
export const FRAME_LINES = 32;
export const FRAME_COLUMNS = 84;

/**
 * One piece of the drawing at its place in the frame: its first line goes on `row`, columns count
 * from the frame's left edge, and spaces are transparent, so pieces stack like cels.
 */
interface Piece {
  readonly row: number;
  readonly lines: readonly string[];
}

/** A piece written as art: leading spaces place it; blank lines above it are left out for `row`. */
function piece(row: number, raw: string): Piece {
  const lines = raw.replace(/^\n/, '').replace(/\n$/, '').split('\n');
  if (row + lines.length > FRAME_LINES) throw new Error(`piece at row ${row} runs off the frame`);
  for (const line of lines)
    if (line.length > FRAME_COLUMNS) throw new Error(`piece line is ${line.length} columns wide`);
  return { row, lines };
}

/** The line of the box's rim: everything above it moves, the box below never does. */
const RIM = 18;

/** The box with its lid off (the opening dotted) and its lamp dark; the switch's mount on top. */
const BOX = piece(
  RIM - 1,
  String.raw`
                        _[__]_
          +==================================+ . . . . . . . . . . . . .=+
          |                                                              |
          |   .   :    .                                    .   : ( )    |
          |                                                              |
          |             .--------------------.    :  .    .  :           |
          |             |  PLEASE DO NOT     |                           |
          |             |  SWITCH ON.        |                           |
          |             '--------------------'                           |
          |     .   .   :                                                |
          |                                             .  :   .         |
          |                                                              |
          +--------------------------------------------------------------+
            [__] .................................................  [__]
`,
);

/** The shut lid covers the opening. */
const LID_SHUT = piece(
  RIM,
  String.raw`
                                             ============================
`,
);

/** The lamp on the box, lit while the switch is on (and a moment after). */
const LAMP_LIT = piece(
  RIM + 2,
  String.raw`
                                                                   *
`,
);

// The switch's lever, leaning right (on) or left (off).
const SWITCH_ON = piece(
  14,
  String.raw`
                             (@)
                             /
                            /
`,
);

const SWITCH_OFF = piece(
  14,
  String.raw`
                       (@)
                          \
                           \
`,
);

/** The column the arm's upright stands in, inside the opening. */
const UPRIGHT_COLUMN = 59;

/** The arm's upright, its head on `top` and its shaft down to the rim. */
function upright(top: number, head: readonly string[]): Piece {
  const lines = [...head];
  while (top + lines.length < RIM) lines.push('|::|');
  return { row: top, lines: lines.map((l) => ' '.repeat(UPRIGHT_COLUMN) + l) };
}

const CUP = ['.--.', '|()|'];
const KNUCKLE = ['(())'];

// The lid, from lifting to thrown back and down again; `o` is its handle.
const LID_LIFTS = piece(
  14,
  String.raw`
                                              ..
                                             o  '''----...
                                                          '''---....
                                                                    '''--
`,
);

const LID_OPENS = piece(
  11,
  String.raw`
                                                o'--.
                                                     '-.
                                                        ''-.
                                                            '-..
                                                                '-.
                                                                   '--.
                                                                       '-
`,
);

const LID_WIDE = piece(
  6,
  String.raw`
                                                         \
                                                        o\\
                                                           \
                                                            \\
                                                             \\
                                                               \\
                                                                \\
                                                                  \
                                                                   \\
                                                                    \\
                                                                      \\
                                                                       \\
`,
);

const LID_UPRIGHT = piece(
  5,
  String.raw`
                                                               o\
                                                                \
                                                                 \
                                                                  \
                                                                  \
                                                                   \
                                                                    \
                                                                    \\
                                                                     \
                                                                      \
                                                                      \\
                                                                       \
                                                                        \
`,
);

const LID_BACK = piece(
  5,
  String.raw`
                                                                 o
                                                                  \
                                                                  \
                                                                   \
                                                                   \
                                                                    \
                                                                     \
                                                                     \
                                                                      \
                                                                      \
                                                                       \
                                                                       \
                                                                        \
`,
);

const LID_SINKS = piece(
  6,
  String.raw`
                                                          o\
                                                           \\
                                                            \\
                                                              \
                                                               \
                                                                \\
                                                                 \\
                                                                  \\
                                                                    \
                                                                     \\
                                                                      \\
                                                                       \\
`,
);

const LID_LOWERS = piece(
  9,
  String.raw`
                                                   o-
                                                     '-.
                                                        '-.
                                                           -.
                                                             '-.
                                                                -.
                                                                  '-.
                                                                     '.
                                                                       '-
`,
);

const LID_ALMOST_SHUT = piece(
  14,
  String.raw`
                                              o'--...
                                                     '''--...
                                                             ''---...
                                                                     ''--
`,
);

// The forearm, drawn over the top of the upright's shaft; `<#` is its finger.
const FOREARM_REACHING = piece(
  8,
  String.raw`
                                                     =======
                                                   <#
                                                     =======
`,
);

const FOREARM_REACHES = piece(
  7,
  String.raw`
                                                         ..-
                                                   ..--''
                                              ..-''    .--''
                                        ..--''   ..--''
                                     -''    .--''
                                   <# ..--''
                                     '
`,
);

const FOREARM_PRESSES = piece(
  7,
  String.raw`
                                                         ..-
                                                    .--''
                                               .--''   ..-''
                                         ..--''   .--''
                  click!            ..--'    .--''
                               ..-''   ..--''
                            -''   ..--'
                          <# ..-''
                            '
`,
);

const FOREARM_LIFTS = piece(
  7,
  String.raw`
                                                         ..-
                                                   ..--''
                                              .--''   ..--''
                                        ..--''   ..--'
                                  ..--''   ..--''
                               -''    ..-''
                             <# ..--''
                               '
`,
);

const FOREARM_PULLS = piece(
  7,
  String.raw`
                                                        ..--
                                                ..---'''
                                           --'''    ...---''
                                         <# ...---''
                                           '
`,
);

/** The box, then each piece over it in order. */
function frame(...pieces: readonly Piece[]): string {
  const grid = Array.from({ length: FRAME_LINES }, () => Array<string>(FRAME_COLUMNS).fill(' '));
  for (const p of [BOX, ...pieces]) {
    p.lines.forEach((line, i) => {
      const cells = grid[p.row + i]!;
      [...line].forEach((ch, col) => {
        if (ch !== ' ') cells[col] = ch;
      });
    });
  }
  return grid.map((cells) => cells.join('')).join('\n');
}

const ARM_UP = [upright(9, KNUCKLE), LID_UPRIGHT, FOREARM_REACHING];
const ARM_REACHING = [upright(8, KNUCKLE), LID_BACK];

export const FRAMES: readonly string[] = [
  frame(LID_SHUT, SWITCH_ON, LAMP_LIT), // 00: closed, switch on
  frame(SWITCH_ON, LAMP_LIT, LID_LIFTS), // 01: lid lifts
  frame(SWITCH_ON, LAMP_LIT, upright(16, CUP), LID_OPENS), // 02: lid opens, arm peeks out
  frame(SWITCH_ON, LAMP_LIT, upright(12, CUP), LID_WIDE), // 03: lid wide, arm rises
  frame(SWITCH_ON, LAMP_LIT, ...ARM_UP), // 04: arm up, forearm out
  frame(SWITCH_ON, LAMP_LIT, ...ARM_REACHING, FOREARM_REACHES), // 05: reaching for the switch
  frame(SWITCH_OFF, LAMP_LIT, ...ARM_REACHING, FOREARM_PRESSES), // 06: press: the switch flips off
  frame(SWITCH_OFF, ...ARM_REACHING, FOREARM_LIFTS), // 07: lights off, finger lifts
  frame(SWITCH_OFF, ...ARM_REACHING, FOREARM_PULLS), // 08: arm pulls back
  frame(SWITCH_OFF, ...ARM_UP), // 09: forearm folds in
  frame(SWITCH_OFF, upright(12, CUP), LID_SINKS), // 10: arm sinks
  frame(SWITCH_OFF, upright(16, CUP), LID_LOWERS), // 11: arm inside, lid lowering
  frame(SWITCH_OFF, LID_ALMOST_SHUT), // 12: lid almost shut
  frame(LID_SHUT, SWITCH_OFF), // 13: closed, switch off
];
