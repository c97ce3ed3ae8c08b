/**
 * `npm start` restarts a crashed landing instance the way Fly's restart policy would: real
 * processes, a SIGKILL, the same port serving again; and it gives up (stopping everything) when the
 * instance keeps crashing.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { processesOf, startStack, type Stack } from '../../support/stack.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
};

/** The landing process of this stack (its environment names the stack's private port). */
const landingPids = (s: Stack) =>
  processesOf(s).filter((pid) => cmdline(pid).includes('where.mjs'));

/**
 * The devstack and every process it started (flylocal, landing instances): they inherit its
 * environment, which names this stack's private base port.
 */
const stackPids = (s: Stack): number[] => {
  const marker = `WM_BASE_PRIVATE_PORT=${new URL(s.privateUrl).port}\0`;
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
};
const devstackPids = (s: Stack) =>
  stackPids(s).filter((pid) => cmdline(pid).includes('devstack.mjs'));
/** Everything the stack runs, VMs included. */
const everything = (s: Stack) => [...new Set([...processesOf(s), ...stackPids(s)])];

const healthy = async (url: string) => {
  try {
    return (await fetch(`${url}/healthz`)).ok;
  } catch {
    return false;
  }
};

describe('the local stack restarts a crashed landing instance', () => {
  it('brings it back on the same port after a SIGKILL, and still stops cleanly', async () => {
    stack = await startStack({ WM_AUTOSPAWN: 'off' });
    const s = stack;
    const [first] = landingPids(s);
    expect(first).toBeDefined();
    expect(devstackPids(s)).toHaveLength(1);
    expect(stackPids(s).some((pid) => cmdline(pid).includes('flylocal.mjs'))).toBe(true);

    process.kill(first!, 'SIGKILL');
    await expect
      .poll(() => s.output.join(''), { timeout: 10_000 })
      .toContain('restarting a crashed process');
    const log = s.output.join('');
    expect(log).toContain('"SIGKILL"');
    expect(log).toMatch(/"delayMs":500\b/);

    // A new landing process answers on the same private port, and the page through the proxy.
    await expect
      .poll(
        async () => {
          const pids = landingPids(s);
          return pids.length === 1 && pids[0] !== first && (await healthy(s.privateUrl));
        },
        { timeout: 30_000 },
      )
      .toBe(true);
    await expect.poll(async () => (await fetch(`${s.url}/`)).status, { timeout: 15_000 }).toBe(200);
    expect(devstackPids(s)).toHaveLength(1);

    await s.stop();
    await expect.poll(() => everything(s), { timeout: 20_000 }).toEqual([]);
  });

  it('gives up and stops everything when the instance keeps crashing', async () => {
    stack = await startStack({ WM_AUTOSPAWN: 'off', WM_DEVSTACK_MAX_RESTARTS: '1' });
    const s = stack;
    const [first] = landingPids(s);
    process.kill(first!, 'SIGKILL');
    // The one restart allowed…
    let second: number | undefined;
    await expect
      .poll(
        () => {
          second = landingPids(s).find((pid) => pid !== first);
          return second !== undefined;
        },
        { timeout: 15_000 },
      )
      .toBe(true);
    // …and the next crash, well within the stable period, ends the stack.
    process.kill(second!, 'SIGKILL');
    await expect.poll(() => s.output.join(''), { timeout: 10_000 }).toContain('giving up');
    await expect.poll(() => everything(s), { timeout: 20_000 }).toEqual([]);
  });
});
