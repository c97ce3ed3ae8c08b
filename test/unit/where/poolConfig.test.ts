/** WM_POOL and WM_POOL_MAX: parsed at start, a bad value stops the app with a message naming it. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../../src/shared/env.js';
import { boundedPools, toConfig, whereEnv } from '../../../src/where/config.js';

const cfg = (env: Record<string, string>) =>
  toConfig(parseEnv(whereEnv, { WM_LOCAL: '1', ...env }));

describe('WM_POOL', () => {
  it('is none by default, and reads region:count pairs', () => {
    expect(cfg({}).pool).toEqual({ regions: [], max: 10, followDemand: false });
    expect(cfg({ WM_POOL_FOLLOW_DEMAND: '1' }).pool.followDemand).toBe(true);
    expect(cfg({ WM_POOL: 'ams:2, syd:1' }).pool.regions).toEqual([
      { region: 'ams', target: 2 },
      { region: 'syd', target: 1 },
    ]);
    expect(cfg({ WM_POOL: '' }).pool.regions).toEqual([]);
  });

  it.each(['ams', 'ams:x', 'xxx:1', 'ams:1,ams:2', 'ams:101', 'AMS:1'])(
    'refuses %j with a message naming the variable',
    (value) => {
      let err: unknown;
      try {
        cfg({ WM_POOL: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('WM_POOL');
    },
  );

  it('bounds the pools together by WM_POOL_MAX, the first named served first', () => {
    expect(cfg({ WM_POOL: 'ams:4,syd:4,nrt:4', WM_POOL_MAX: '6' }).pool.regions).toEqual([
      { region: 'ams', target: 4 },
      { region: 'syd', target: 2 },
      { region: 'nrt', target: 0 },
    ]);
    expect(boundedPools([{ region: 'ams', target: 3 }], 0)).toEqual([{ region: 'ams', target: 0 }]);
  });
});
