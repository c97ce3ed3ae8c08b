// Build: bundle each program with esbuild (dependencies stay external) and the browser scripts.
// Fast enough (~1 s) to run before every `npm start` and every test run.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const programs = ['where', 'flylocal', 'devstack', 'migrate'].filter((p) =>
  existsSync(`src/${p}/main.ts`),
);

await build({
  entryPoints: Object.fromEntries(programs.map((p) => [p, `src/${p}/main.ts`])),
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

// The VM app is one self-contained file: a VM boots for every click, and loading one bundled
// module is ~30 % faster than resolving its dependencies file by file.
await build({
  entryPoints: { useless: 'src/useless/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: true,
  logLevel: 'warning',
  // Bundled CommonJS dependencies call require(): give the ES module one.
  banner: {
    js: "import { createRequire as __wmCreateRequire } from 'node:module'; const require = __wmCreateRequire(import.meta.url);",
  },
});

// Flat names (dist/web/app.js, dash.js, machine.js): the apps serve them by file name.
const web = Object.fromEntries(
  Object.entries({
    app: 'src/where/web/app.ts',
    dash: 'src/where/web/dash.ts',
    machine: 'src/useless/web/machine.ts',
  }).filter(([, f]) => existsSync(f)),
);
if (Object.keys(web).length > 0) {
  await build({
    entryPoints: web,
    outdir: 'dist/web',
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
}
