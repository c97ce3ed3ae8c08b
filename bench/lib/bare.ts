/**
 * The bare XState floor: the same charts driven with createActor + send and nothing else (no
 * envelope, id, store, lock, timers or effects), through the same accepted events a launch takes.
 */
import { createActor } from 'xstate';
import {
  launchMachine,
  vmMachine,
  type ChartEvent,
  type FactData,
  type FactType,
} from '../../machines/index.js';
import { INSTANCE, READY_TIMEOUT_MS, REGION, TTL_MS } from './runtimeRig.js';

let seq = 0;
const ev = <T extends FactType>(type: T, data: FactData<T>, at: number): ChartEvent<T> =>
  ({
    ...(data as object),
    type,
    at,
    eventId: `01J${(++seq).toString().padStart(23, '0')}`,
  }) as ChartEvent<T>;

/** Ids shaped like the real ones (a ULID, a 14-hex-digit machine id). */
export function bareIds(i: number): { launchId: string; machineId: string } {
  return {
    launchId: `01K${i.toString().padStart(23, '0')}`,
    machineId: `b${i.toString(16).padStart(13, '0')}`,
  };
}

/** One launch's 11 accepted events through a launch actor and a vm actor; both end final. */
export function bareLaunch(i: number): void {
  const { launchId, machineId } = bareIds(i);
  const at = Date.now();
  const la = createActor(launchMachine).start();
  const va = createActor(vmMachine).start();
  la.send(
    ev(
      'launch.requested',
      {
        launchId,
        region: REGION,
        source: 'button',
        owner: INSTANCE,
        readyTimeoutMs: READY_TIMEOUT_MS,
        ttlMs: TTL_MS,
      },
      at,
    ),
  );
  la.send(ev('capacity.reserved', { launchId, live: 1, limit: 1000 }, at));
  const created = ev(
    'fly.machineCreated',
    {
      machineId,
      launchId,
      region: REGION,
      instanceId: 'i',
      state: 'created',
      source: 'button',
      ttlMs: TTL_MS,
      createdAt: at,
    },
    at,
  );
  va.send(created);
  la.send(created);
  const started = ev(
    'fly.machineObserved',
    { machineId, launchId, state: 'started', region: REGION },
    at,
  );
  va.send(started);
  la.send(started);
  const listening = ev('vm.listening', { machineId, launchId, region: REGION, ttlMs: TTL_MS }, at);
  va.send(listening);
  la.send(listening);
  va.send(ev('vm.stopping', { machineId, launchId, reason: 'finished' }, at));
  const destroyed = ev(
    'fly.machineObserved',
    { machineId, launchId, state: 'destroyed', region: REGION },
    at,
  );
  va.send(destroyed);
  la.send(destroyed);
  if (la.getSnapshot().status !== 'done' || va.getSnapshot().status !== 'done') {
    throw new Error(
      `bare launch ${i} did not finish: ${JSON.stringify(la.getSnapshot().value)} / ${JSON.stringify(va.getSnapshot().value)}`,
    );
  }
  la.stop();
  va.stop();
}

/** A vm actor taken to `listening` and left running (for the heap floor). */
export function bareListeningVm(i: number): { stop(): void } {
  const { machineId } = bareIds(i);
  const at = Date.now();
  const va = createActor(vmMachine).start();
  va.send(
    ev(
      'fly.machineCreated',
      { machineId, region: REGION, instanceId: 'i', state: 'started', createdAt: at },
      at,
    ),
  );
  va.send(ev('vm.listening', { machineId, region: REGION }, at));
  if (!va.getSnapshot().matches('listening')) throw new Error('bare vm did not reach listening');
  return va;
}
