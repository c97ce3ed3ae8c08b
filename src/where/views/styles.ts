/**
 * The stylesheet of the landing page and the dashboard: one string, inlined with the page's nonce
 * or served as a file. Light and dark themes through custom properties and prefers-color-scheme.
 */

export const PAGE_CSS = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f3efe7; --bg-2: #e9e3d7; --panel: #fffdf8; --ink: #1d1b17; --muted: #625b50; --line: #dad1c2;
  --accent: #b7770a; --accent-soft: #f6e6c4;
  --ocean: #f7f3ec; --grid: #e7dfd1; --land: #ddd3c2; --land-edge: #cbbfa9;
  --dot: #8a7f6c; --live: #f2b705; --live-core: #9a6b00; --own: #1c6fe0; --edge: #d4460e;
  --ok: #1f6f34; --bad: #a93226; --info: #155a9c; --warn: #805300;
  --shadow: 0 1px 2px rgb(60 40 10 / 6%), 0 10px 30px rgb(60 40 10 / 9%);
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  --mono: ui-monospace, "SF Mono", SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1015; --bg-2: #12151b; --panel: #171b22; --ink: #ece6da; --muted: #a59d8f; --line: #2b313b;
    --accent: #f0b429; --accent-soft: #3a2f16;
    --ocean: #12161c; --grid: #1d222b; --land: #283040; --land-edge: #34405a;
    --dot: #8b95a7; --live: #ffd43b; --live-core: #fff3bf; --own: #4dabf7; --edge: #ff8a4c;
    --ok: #51cf66; --bad: #ff6b6b; --info: #4dabf7; --warn: #fcc419;
    --shadow: 0 1px 2px rgb(0 0 0 / 30%), 0 12px 32px rgb(0 0 0 / 35%);
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; min-height: 100vh; color: var(--ink); font: 16px/1.55 var(--sans);
  background: radial-gradient(60rem 30rem at 85% -10%, var(--accent-soft), transparent 70%), var(--bg);
}
a { color: var(--info); }
a:focus-visible, button:focus-visible, [tabindex]:focus-visible { outline: 3px solid var(--accent); outline-offset: 3px; }
code, .code { font-family: var(--mono); font-size: .92em; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.wrap { max-width: 70rem; margin: 0 auto; padding: clamp(1rem, 3.5vw, 2.75rem); }
.brand { display: flex; align-items: center; gap: .6rem; margin: 0 0 clamp(1rem, 4vw, 2.5rem);
  font: 700 .78rem/1 var(--mono); letter-spacing: .22em; text-transform: uppercase; color: var(--muted); }
.brand::before { content: ""; width: .7rem; height: .7rem; border-radius: 50%; background: var(--live);
  box-shadow: 0 0 0 .25rem color-mix(in srgb, var(--live) 30%, transparent); }
.brand a { color: inherit; text-decoration: none; }
.brand nav { margin-left: auto; letter-spacing: .12em; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 1.25rem; box-shadow: var(--shadow); }

/* Landing: the hero and the launch console */
.top { display: grid; grid-template-columns: minmax(0, 1.25fr) minmax(0, 1fr); grid-template-areas: "hero console" "facts console";
  column-gap: clamp(1.5rem, 4vw, 3.5rem); row-gap: .4rem; align-items: center; }
.hero { grid-area: hero; align-self: end; }
.console { grid-area: console; }
.facts { grid-area: facts; align-self: start; }
h1 { font-size: clamp(2.1rem, 5.4vw, 3.7rem); line-height: 1.02; letter-spacing: -.025em; margin: 0 0 .45em; font-weight: 800; }
h1 em { font-style: normal; color: var(--accent); }
.lede { font-size: clamp(1.02rem, 1.6vw, 1.18rem); color: var(--muted); max-width: 34rem; margin: 0 0 1.4rem; }
.facts { margin: 0; padding: 0; list-style: none; display: grid; gap: .7rem; }
.facts > li { display: grid; grid-template-columns: 1.6rem 1fr; align-items: baseline; }
.facts .key { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; transform: translateY(.05rem); }
.key-edge { border: .17rem solid var(--edge); }
.key-live { background: var(--live); box-shadow: 0 0 0 .2rem color-mix(in srgb, var(--live) 35%, transparent); }
.key-cap { background: var(--dot); border-radius: .2rem !important; }
.console { padding: clamp(1.5rem, 4vw, 2.5rem) 1.5rem; display: grid; justify-items: center; gap: 1.4rem; text-align: center; }
.launch { margin: 0; }
.big-button {
  --btn: #e03131; --btn-hi: #ff8787; --btn-lo: #9b1c1c;
  position: relative; width: clamp(9.5rem, 30vw, 11.5rem); aspect-ratio: 1; border-radius: 50%; border: 0; padding: 0;
  cursor: pointer; color: #fff; font: 800 1.2rem/1 var(--sans); letter-spacing: .16em; text-transform: uppercase;
  text-shadow: 0 1px 2px rgb(0 0 0 / 35%);
  background: radial-gradient(circle at 50% 32%, var(--btn-hi), var(--btn) 58%, var(--btn-lo));
  box-shadow: 0 0 0 .55rem var(--bg-2), 0 0 0 .65rem var(--line), 0 1rem 1.6rem rgb(0 0 0 / 22%),
    inset 0 -.55rem 1rem rgb(0 0 0 / 22%), inset 0 .45rem .7rem rgb(255 255 255 / 35%);
  transition: transform .12s ease, box-shadow .12s ease, filter .3s ease;
}
.big-button:hover:not(:disabled) { filter: brightness(1.06); }
.big-button:active:not(:disabled) { transform: translateY(.2rem) scale(.985); }
.big-button:disabled { cursor: progress; }
.big-button:focus-visible { outline-offset: 1rem; }
.big-button[data-state="requesting"], .big-button[data-state="requested"] { --btn: #868e96; --btn-hi: #ced4da; --btn-lo: #495057; }
.big-button[data-state="created"] { --btn: #f08c00; --btn-hi: #ffd43b; --btn-lo: #b35c00; }
.big-button[data-state="started"] { --btn: #1c7ed6; --btn-hi: #74c0fc; --btn-lo: #0b4f8a; }
.big-button[data-state="ready"], .big-button[data-state="redirecting"] { --btn: #2f9e44; --btn-hi: #8ce99a; --btn-lo: #1b5e28; }
.big-button[data-state="failed"] { --btn: #495057; --btn-hi: #868e96; --btn-lo: #212529; animation: shake .4s ease 1; }
.big-button[data-state="requested"] .label, .big-button[data-state="requesting"] .label { animation: breathe 1.2s ease-in-out infinite; }
@keyframes shake { 25% { transform: translateX(-.4rem); } 50% { transform: translateX(.4rem); } 75% { transform: translateX(-.2rem); } }
@keyframes breathe { 50% { opacity: .45; } }
.readout { display: grid; gap: .35rem; justify-items: center; min-height: 6.2rem; max-width: 26rem; }
.timer { font: 700 clamp(2rem, 6vw, 2.6rem)/1 var(--mono); font-variant-numeric: tabular-nums; letter-spacing: .02em; }
.timer[data-started="false"] { color: var(--muted); }
.timer[data-running="true"] { color: var(--accent); }
.status { margin: 0; min-height: 3em; color: var(--ink); }
.status[data-state="failed"] { color: var(--bad); }
.open-link { font-weight: 600; }
.noscript { font-size: .9rem; color: var(--muted); }
/* Launch times: what to expect where, and one launch's facts in order */
.times { margin: 0; font-size: .92rem; color: var(--muted); }
.compare { margin: 0; font-weight: 600; }
.timeline { display: flex; flex-wrap: wrap; justify-content: center; gap: .15rem .4rem; margin: 0; padding: 0;
  list-style: none; font: .85rem/1.4 var(--mono); }
.timeline li + li::before { content: "→ "; color: var(--muted); }
.timeline time { color: var(--muted); }

/* Chips: regions with machines */
.chips { display: flex; flex-wrap: wrap; gap: .35rem; margin: .35rem 0 0; padding: 0; list-style: none; }
.chip { display: inline-block; white-space: nowrap; padding: .1rem .6rem; border-radius: 99rem; line-height: 1.5;
  background: color-mix(in srgb, var(--live) 22%, var(--panel)); border: 1px solid color-mix(in srgb, var(--live) 60%, var(--line)); font-size: .92rem; }
.chip .code { color: var(--muted); font-size: .8rem; }
.chip .count { font-weight: 700; }
.chip.none { background: transparent; border-style: dashed; color: var(--muted); }

/* The map */
.map-panel { margin: clamp(1.5rem, 4vw, 2.5rem) 0 0; padding: clamp(.5rem, 2vw, 1.25rem); overflow: hidden; }
.map { display: block; width: 100%; height: auto; }
.map .sphere { fill: var(--ocean); stroke: var(--line); stroke-width: 2; }
.map .graticule { fill: none; stroke: var(--grid); stroke-width: 1.5; }
.map .land { fill: var(--land); stroke: var(--land-edge); stroke-width: 1.4; stroke-linejoin: round; }
.region { cursor: pointer; outline: none; }
.region .hit { fill: transparent; }
.region .dot { fill: var(--dot); stroke: var(--panel); stroke-width: 1.2; transition: fill .25s; }
.region .halo { fill: var(--live); opacity: 0; transition: opacity .3s; }
.region.live .halo { opacity: .85; }
.region.live .dot { fill: var(--live-core); }
.region .pulse { fill: none; stroke: var(--own); stroke-width: 3; opacity: 0; transform-box: fill-box; transform-origin: center; }
.region.own .pulse { opacity: 1; animation: pulse 1.8s ease-out infinite; }
.region.own .dot { fill: var(--own); }
.region .ring { fill: none; stroke: var(--edge); stroke-width: 2.5; }
.region .code, .edge-label { font-family: var(--mono); font-weight: 700; text-anchor: middle; paint-order: stroke;
  stroke: var(--panel); stroke-linejoin: round; pointer-events: none; user-select: none; }
.region .code { font-size: 20px; fill: var(--ink); stroke-width: 6px; opacity: 0; transition: opacity .15s; }
.region:hover .code, .region:focus-visible .code, .region.active .code { opacity: 1; }
.region:focus-visible .dot { stroke: var(--accent); stroke-width: 3; }
.region.edge .code { opacity: 0 !important; }
.edge-label { font-size: 19px; fill: var(--edge); stroke-width: 6px; }
@keyframes pulse { from { transform: scale(.5); opacity: 1; } to { transform: scale(2.6); opacity: 0; } }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; justify-content: center; margin: .6rem 0 .2rem; font-size: .85rem; color: var(--muted); }
.legend span { display: inline-flex; align-items: center; gap: .4rem; }
.legend i { display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; }
.legend .k-region { background: var(--dot); width: .45rem; height: .45rem; }
.legend .k-edge { border: .16rem solid var(--edge); }
.legend .k-live { background: var(--live); }
.legend .k-own { border: .16rem solid var(--own); }
footer.foot { margin: 2rem 0 0; font-size: .85rem; color: var(--muted); text-align: center; }

@media (max-width: 760px) {
  .top { grid-template-columns: minmax(0, 1fr); grid-template-areas: "hero" "console" "facts"; row-gap: 1.5rem; }
  .lede { margin-bottom: 0; }
  .region .code, .edge-label { font-size: 34px; stroke-width: 9px; }
  .region .code { transform: translateY(-10px); }
  .region .dot { r: 6px; }
  .region .halo { r: 15px; }
  .region .ring { r: 18px; stroke-width: 4; }
  .region .pulse { r: 14px; stroke-width: 5; }
}
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after { animation: none !important; transition: none !important; }
  /* Without motion, your machine is a steady double ring instead of a pulse. */
  .region.own .pulse { opacity: 1; transform: scale(1.5); stroke-width: 4; }
}

/* Dashboard */
.dash h1 { font-size: clamp(1.8rem, 4vw, 2.6rem); margin-bottom: .2em; }
.dash-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(17rem, 1fr)); gap: 1rem; margin: 1.5rem 0; }
.card { padding: 1.1rem 1.25rem; }
.card h2 { margin: 0 0 .6rem; font-size: .78rem; letter-spacing: .16em; text-transform: uppercase; color: var(--muted); }
.big-number { font: 800 2.2rem/1.1 var(--mono); font-variant-numeric: tabular-nums; }
.big-number small { font-size: 1rem; color: var(--muted); font-weight: 600; }
meter { width: 100%; height: .7rem; }
.switch-form { display: flex; align-items: center; gap: .75rem; margin-top: .75rem; }
.btn { font: 600 .92rem/1 var(--sans); padding: .6rem .95rem; border-radius: .6rem; border: 1px solid var(--line);
  background: var(--bg-2); color: var(--ink); cursor: pointer; }
.btn:hover:not(:disabled) { border-color: var(--accent); }
.btn.primary { background: var(--accent); border-color: var(--accent); color: #1d1b17; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 99rem; font: 700 .72rem/1.5 var(--mono);
  letter-spacing: .05em; text-transform: uppercase; background: var(--bg-2); color: var(--muted); border: 1px solid var(--line); }
.badge[data-status="created"] { color: var(--warn); border-color: currentColor; }
.badge[data-status="started"] { color: var(--info); border-color: currentColor; }
.badge[data-status="listening"], .badge[data-state="active"] { color: var(--ok); border-color: currentColor; }
.badge[data-status="stopping"], .badge[data-state="off"] { color: var(--bad); border-color: currentColor; }
.badge[data-state="idle"] { color: var(--warn); border-color: currentColor; }
dl.kv { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; margin: .4rem 0 0; font-size: .92rem; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
.section-title { display: flex; align-items: baseline; gap: .75rem; margin: 2rem 0 .75rem; }
.section-title h2 { margin: 0; font-size: 1.15rem; }
.section-title p { margin: 0; color: var(--muted); font-size: .9rem; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(10.5rem, 1fr)); gap: .6rem; margin: 0; padding: 0; list-style: none; }
.tile { padding: .7rem .8rem; display: grid; gap: .45rem; border-radius: .9rem; }
.tile[data-live="true"] { border-color: color-mix(in srgb, var(--live) 70%, var(--line)); background: color-mix(in srgb, var(--live) 9%, var(--panel)); }
.tile-head { display: flex; justify-content: space-between; align-items: baseline; gap: .4rem; min-width: 0; }
.tile-head code { color: var(--muted); font-size: .8rem; }
.tile-city { font-weight: 650; font-size: .95rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tile-count { font: 600 .78rem var(--mono); color: var(--muted); margin-top: -.3rem; }
.tile[data-live="true"] .tile-count { color: var(--ink); }
.tile[data-live="true"] .tile-count::before { content: "● "; color: var(--live); }
.tile-times { margin: -.2rem 0 0; font-size: .78rem; color: var(--muted); }
.tile form { margin: 0; }
.tile-button { width: 100%; font: 600 .85rem/1.2 var(--sans); padding: .5rem .6rem; border-radius: .55rem; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg-2); color: var(--ink); text-align: center; }
.tile-button:hover:not(:disabled) { border-color: var(--accent); }
.tile-button:disabled { cursor: progress; }
.tile-button[data-state="requesting"], .tile-button[data-state="requested"], .tile-button[data-state="created"], .tile-button[data-state="started"] {
  background: color-mix(in srgb, var(--warn) 18%, var(--panel)); border-color: var(--warn); }
.tile-button[data-state="ready"] { background: color-mix(in srgb, var(--ok) 18%, var(--panel)); border-color: var(--ok); }
.tile-button[data-state="failed"] { background: color-mix(in srgb, var(--bad) 15%, var(--panel)); border-color: var(--bad); }
.tile-note { margin: 0; font-size: .78rem; color: var(--muted); }
.tile-note:empty { display: none; }
.tile-note[data-state="failed"] { color: var(--bad); }
.table-wrap { overflow-x: auto; }
table.machines { width: 100%; border-collapse: collapse; font-size: .92rem; }
table.machines th, table.machines td { text-align: left; padding: .55rem .8rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.machines th { font-size: .75rem; letter-spacing: .12em; text-transform: uppercase; color: var(--muted); font-weight: 700; }
table.machines td.age { font-family: var(--mono); font-variant-numeric: tabular-nums; }
table.machines tr.empty td { color: var(--muted); text-align: center; padding: 1.2rem; }

/* The no-JS launch progress page */
.progress { max-width: 34rem; margin: 10vh auto 0; padding: 2rem; text-align: center; }
.progress h1 { font-size: clamp(1.6rem, 4vw, 2.2rem); }
`;
