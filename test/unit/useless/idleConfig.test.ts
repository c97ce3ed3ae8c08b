/**
 * The idle time travels from the landing app's config (WM_VM_IDLE_MS) into each machine's env
 * (WM_IDLE_MS), where the VM's own schema reads it.
 */
import { describe, expect, it } from 'vitest';
import { uselessEnv } from '../../../src/useless/config.js';
import { machineSpec } from '../../../src/where/machineSpec.js';
import { testConfig } from '../../support/whereRig.js';

const LAUNCH = {
  launchId: '01J9Z8X7W6V5T4S3R2Q1P0NMKH',
  region: 'ams',
  ttlMs: 600_000,
  owner: 'test-1',
};
const vmEnv = (env: Record<string, string>) =>
  uselessEnv.parse({ ...env, FLY_MACHINE_ID: '148ed599c57289', FLY_REGION: 'ams' });

describe('the idle time of a machine', () => {
  it('defaults to 2 minutes, is set by WM_VM_IDLE_MS, and reaches the VM as WM_IDLE_MS', () => {
    const byDefault = machineSpec(testConfig(), { ...LAUNCH, source: 'button' });
    expect(byDefault.env.WM_IDLE_MS).toBe('120000');
    expect(vmEnv(byDefault.env).idleMs).toBe(120_000);

    const set = machineSpec(testConfig({ WM_VM_IDLE_MS: '30000' }), { ...LAUNCH, source: 'dash' });
    expect(set.env.WM_IDLE_MS).toBe('30000');
    expect(vmEnv(set.env).idleMs).toBe(30_000);

    const off = machineSpec(testConfig({ WM_VM_IDLE_MS: '0' }), { ...LAUNCH, source: 'button' });
    expect(vmEnv(off.env).idleMs).toBe(0);
  });

  it('refuses a negative or non-numeric idle time on either side', () => {
    expect(() => testConfig({ WM_VM_IDLE_MS: '-1' })).toThrow(/WM_VM_IDLE_MS/);
    const env = machineSpec(testConfig(), { ...LAUNCH, source: 'button' }).env;
    expect(
      uselessEnv.safeParse({
        ...env,
        FLY_MACHINE_ID: '148ed599c57289',
        FLY_REGION: 'ams',
        WM_IDLE_MS: 'soon',
      }).success,
    ).toBe(false);
  });
});
