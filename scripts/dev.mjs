// `npm run dev`: rebuild on every change and restart the local stack (platform + landing app).
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';

let child;
let timer;
function restart() {
  const build = spawn(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  build.on('exit', (code) => {
    if (code !== 0) return;
    const start = () => {
      child = spawn(process.execPath, ['dist/devstack.mjs', ...process.argv.slice(2)], {
        stdio: 'inherit',
        env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'debug' },
      });
    };
    if (child && child.exitCode === null) {
      child.once('exit', start);
      child.kill('SIGINT');
    } else start();
  });
}
for (const dir of ['src', 'machines']) {
  watch(dir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(restart, 300);
  });
}
process.on('SIGINT', () => {
  if (child && child.exitCode === null) child.once('exit', () => process.exit(0)).kill('SIGINT');
  else process.exit(0);
});
restart();
