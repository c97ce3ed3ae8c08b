/** Configuration: one schema over the environment; a bad value stops a program with its name. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseEnv, ConfigError } from '../../../src/shared/env.js';
import { toConfig, whereEnv } from '../../../src/where/config.js';

describe('landing app configuration', () => {
  it('stops the process with exit code 2 and names the variable when a value is bad', () => {
    const r = spawnSync(process.execPath, ['dist/where.mjs'], {
      env: { PATH: process.env.PATH, WM_LOCAL: '1', PORT: 'eighty', WM_MAX_MACHINES: '-3' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('PORT');
    expect(r.stderr).toContain('WM_MAX_MACHINES');
    expect(r.stderr).not.toContain('    at '); // a message, not a stack trace
  });

  it('requires the secrets outside local mode, and names each one', () => {
    try {
      parseEnv(whereEnv, { FLY_IMAGE_REF: 'registry.fly.io/where:x' });
      expect.unreachable('parsing should have failed');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const vars = (err as ConfigError).issues.map((i) => i.variable).sort();
      expect(vars).toEqual(['DEBUG_TOKEN', 'FLY_API_TOKEN', 'WM_CALLBACK_SECRET']);
    }
  });

  it('rejects an unknown region in the autospawner rotation', () => {
    expect(() => parseEnv(whereEnv, { WM_LOCAL: '1', WM_AUTOSPAWN_REGIONS: 'ams,xxx' })).toThrow(
      /WM_AUTOSPAWN_REGIONS/,
    );
  });

  it('derives the callback address from the private IP, and generates local secrets', () => {
    const cfg = toConfig(
      parseEnv(whereEnv, { WM_LOCAL: '1', FLY_PRIVATE_IP: 'fdaa:0:1::2', PRIVATE_PORT: '4001' }),
    );
    expect(cfg.callback.baseUrl).toBe('http://[fdaa:0:1::2]:4001');
    expect(cfg.callback.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(cfg.debugToken.length).toBeGreaterThanOrEqual(16);
    const prod = toConfig(
      parseEnv(whereEnv, {
        FLY_API_TOKEN: 't',
        WM_CALLBACK_SECRET: 's'.repeat(32),
        DEBUG_TOKEN: 'd'.repeat(16),
        FLY_IMAGE_REF: 'registry.fly.io/where:deployment-1',
        FLY_APP_NAME: 'where',
      }),
    );
    expect(prod.vm.image).toBe('registry.fly.io/where:deployment-1');
    expect(prod.callback.fallbackUrl).toBe('http://where.internal:4001');
  });
});
