/**
 * An in-memory, scriptable FlyMachines for fast runtime tests: no processes, no HTTP. States move
 * at once or on command (skipLaunch machines wait for start()), failures are scripted per call,
 * metadata can change after the create, and a ledger keeps every machine ever created so a test
 * can count orphans. Passes test/contract/flyMachines.contract.ts.
 */
import { fastUlid as ulid } from '../system/ulidIds.js';
import type { Clock, Timers } from '../../ports/clock.js';
import {
  CREATE_WITHDRAWN,
  FlyApiError,
  machineIdentity,
  type CreateMachineInput,
  type CreateOptions,
  type FlyAction,
  type FlyMachine,
  type FlyMachines,
  type FlyMachineState,
  type WaitState,
} from '../../ports/flyMachines.js';
import { systemClock, SystemTimers } from '../system/systemClock.js';
import { FakeScript, scriptedError, type ScriptedFailure } from './fakeScript.js';
import { clampWaitSeconds } from './wire.js';

/** How a created machine behaves once started. */
export interface MachineBehaviour {
  /** The machine's process exits on its own right after it starts, with this code. */
  readonly exitCode?: number;
}

export interface FakeFlyOptions {
  /**
   * `immediate` (default): machines start as soon as they are created, and stop/destroy finish at
   * once. `manual`: every step waits for `advance(id)`.
   */
  readonly mode?: 'immediate' | 'manual';
  readonly clock?: Clock;
  /** Timers for wait timeouts (pass a ManualClock to expire waits without waiting). */
  readonly timers?: Timers;
  readonly region?: string;
}

export interface FakeCall {
  readonly op: FlyAction;
  readonly machineId?: string;
  readonly input?: CreateMachineInput;
  readonly failed?: number;
}

interface FakeMachine {
  id: string;
  name: string;
  state: FlyMachineState;
  region: string;
  instanceId: string;
  privateIp: string;
  createdAt: number;
  updatedAt: number;
  input: CreateMachineInput;
  /** The input's metadata, then whatever setMetadata/deleteMetadata/update made of it. */
  metadata: Record<string, string>;
  behaviour: MachineBehaviour;
  restarts: number;
  history: FlyMachineState[];
}

const RUNNING: readonly string[] = ['starting', 'started'];

export class FakeFlyMachines implements FlyMachines {
  /** Every call made, in order. */
  readonly calls: FakeCall[] = [];
  private readonly machines = new Map<string, FakeMachine>();
  private readonly script = new FakeScript();
  private readonly waiters = new Set<() => void>();
  private behaviourFor: (input: CreateMachineInput) => MachineBehaviour | undefined = () =>
    undefined;
  private readonly mode: 'immediate' | 'manual';
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly region: string;
  private seq = 0;

  constructor(opts: FakeFlyOptions = {}) {
    this.mode = opts.mode ?? 'immediate';
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? new SystemTimers(this.clock);
    this.region = opts.region ?? 'yyz';
  }

  // ---- scripting -------------------------------------------------------------------------------

  /** The next `times` calls of `op` fail like this (queued after any already scripted). */
  failNext(op: FlyAction, failure: ScriptedFailure, times = 1): this {
    this.script.failNext(op, failure, times);
    return this;
  }

  /**
   * The next call of `op` (create or list) waits, before anything is sent, until the returned
   * function is called: a request stuck in a client-side queue (a rate-limit wait) or a slow
   * answer, while the world moves on.
   */
  holdNext(op: FlyAction): () => void {
    return this.script.holdNext(op);
  }

  /** Decide per create how the new machine behaves (e.g. `{ exitCode: 1 }` for one that crashes). */
  onCreate(fn: (input: CreateMachineInput) => MachineBehaviour | undefined): this {
    this.behaviourFor = fn;
    return this;
  }

  /** Manual mode: move a machine one lifecycle step (or straight to `to`). */
  advance(id: string, to?: FlyMachineState): FlyMachine {
    const m = this.mustFind('advance', id);
    if (to !== undefined) {
      this.set(m, to);
      return this.view(m);
    }
    switch (m.state) {
      case 'created':
        // A skipLaunch machine waits for start(); advance() still moves it, as a test asks.
        this.set(m, 'starting');
        break;
      case 'starting':
        this.started(m);
        break;
      case 'stopping':
        this.stopped(m);
        break;
      case 'destroying':
        this.set(m, 'destroyed');
        break;
      default:
        break;
    }
    return this.view(m);
  }

  /** The machine's process exits with `code`: restart policy, then stopped, then auto_destroy. */
  exit(id: string, code = 0): void {
    const m = this.mustFind('exit', id);
    if (!RUNNING.includes(m.state)) return;
    const { policy, maxRetries = 10 } = m.input.restart;
    if (policy === 'always' || (policy === 'on-failure' && code !== 0 && m.restarts < maxRetries)) {
      m.restarts += 1;
      this.set(m, 'starting');
      if (this.mode === 'immediate') this.started(m);
      return;
    }
    this.set(m, 'stopping');
    this.stopped(m);
  }

  // ---- inspection ------------------------------------------------------------------------------

  /** Every machine ever created, destroyed ones included, in creation order. */
  ledger(): FlyMachine[] {
    return [...this.machines.values()].map((m) => this.view(m));
  }

  /** Machines not destroyed. */
  live(): FlyMachine[] {
    return this.ledger().filter((m) => m.state !== 'destroyed');
  }

  inputOf(id: string): CreateMachineInput | undefined {
    return this.machines.get(id)?.input;
  }

  history(id: string): readonly FlyMachineState[] {
    return [...(this.machines.get(id)?.history ?? [])];
  }

  restarts(id: string): number {
    return this.machines.get(id)?.restarts ?? 0;
  }

  count(op: FlyAction): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  // ---- FlyMachines -----------------------------------------------------------------------------

  async create(input: CreateMachineInput, opts: CreateOptions = {}): Promise<FlyMachine> {
    const gate = this.script.gate('create');
    if (gate) await gate;
    if (opts.proceed && !opts.proceed()) {
      this.calls.push({ op: 'create', input, failed: 0 });
      throw new FlyApiError('create', 0, CREATE_WITHDRAWN, false, undefined);
    }
    const failure = this.script.take('create');
    if (failure && !failure.commit)
      throw this.record({ op: 'create', input, failed: failure.status }, failure);
    if (
      input.name &&
      [...this.machines.values()].some((m) => m.name === input.name && m.state !== 'destroyed')
    ) {
      this.calls.push({ op: 'create', input, failed: 409 });
      throw new FlyApiError(
        'create',
        409,
        `already_exists: a machine named "${input.name}" already exists`,
        false,
        undefined,
      );
    }
    const n = ++this.seq;
    const now = this.clock.now();
    const m: FakeMachine = {
      id: n.toString(16).padStart(14, '0'),
      name: input.name ?? `fake-machine-${n}`,
      state: 'created',
      region: input.region || this.region,
      instanceId: ulid(now),
      privateIp: `fdaa:0:1::${n.toString(16)}`,
      createdAt: now,
      updatedAt: now,
      input,
      metadata: { ...input.metadata },
      behaviour: this.behaviourFor(input) ?? {},
      restarts: 0,
      history: ['created'],
    };
    this.machines.set(m.id, m);
    const created = this.view(m);
    if (this.mode === 'immediate' && !input.skipLaunch) {
      this.set(m, 'starting');
      this.started(m);
    }
    if (failure)
      throw this.record({ op: 'create', machineId: m.id, input, failed: failure.status }, failure);
    this.calls.push({ op: 'create', machineId: m.id, input });
    return created;
  }

  async get(machineId: string): Promise<FlyMachine> {
    this.check('get', machineId);
    return this.view(this.mustFind('get', machineId));
  }

  async list(
    filter: { metadata?: Readonly<Record<string, string>>; includeDeleted?: boolean } = {},
  ): Promise<FlyMachine[]> {
    const gate = this.script.gate('list');
    if (gate) await gate;
    this.check('list');
    return this.ledger()
      .filter((m) => filter.includeDeleted || m.state !== 'destroyed')
      .filter((m) => Object.entries(filter.metadata ?? {}).every(([k, v]) => m.metadata[k] === v));
  }

  async wait(
    machineId: string,
    state: WaitState,
    opts: { timeoutS?: number; instanceId?: string } = {},
  ): Promise<boolean> {
    // A scripted 408 is Fly's wait timeout: the HTTP client answers false, so does the fake.
    if (this.script.takeIf('wait', 408)) {
      this.calls.push({ op: 'wait', machineId, failed: 408 });
      return false;
    }
    this.check('wait', machineId);
    const m = this.mustFind('wait', machineId);
    if (opts.instanceId !== undefined && opts.instanceId !== m.instanceId) {
      throw new FlyApiError(
        'wait',
        400,
        `invalid_argument: instance_id ${opts.instanceId} is not the current version`,
        false,
        undefined,
      );
    }
    const reached = (): boolean =>
      m.state === state || (state === 'stopped' && m.state === 'destroyed');
    if (reached()) return true;
    const timeoutS = clampWaitSeconds(opts.timeoutS);
    const key = `fake-wait-${machineId}-${++this.seq}`;
    return new Promise<boolean>((resolve) => {
      const finish = (value: boolean): void => {
        this.timers.clear(key);
        this.waiters.delete(check);
        resolve(value);
      };
      const check = (): void => {
        if (reached()) finish(true);
      };
      this.waiters.add(check);
      this.timers.set(key, this.clock.now() + timeoutS * 1000, () => finish(false));
    });
  }

  async stop(machineId: string, _opts: { signal?: string; timeoutS?: number } = {}): Promise<void> {
    this.check('stop', machineId);
    const m = this.mustFind('stop', machineId);
    if (m.state === 'destroyed' || m.state === 'destroying') {
      throw new FlyApiError(
        'stop',
        412,
        `failed_precondition: machine ${m.id} is ${m.state}`,
        false,
        undefined,
      );
    }
    if (!RUNNING.includes(m.state)) return;
    this.set(m, 'stopping');
    if (this.mode === 'immediate') this.stopped(m);
  }

  async destroy(machineId: string, opts: { force?: boolean } = {}): Promise<void> {
    // A scripted 404 is "already gone", which destroy treats as success, as the HTTP client does.
    if (this.script.takeIf('destroy', 404)) {
      this.calls.push({ op: 'destroy', machineId, failed: 404 });
      return;
    }
    this.check('destroy', machineId);
    const m = this.machines.get(machineId);
    if (!m || m.state === 'destroyed') return;
    if (!(opts.force ?? true) && (RUNNING.includes(m.state) || m.state === 'stopping')) {
      throw new FlyApiError(
        'destroy',
        412,
        'failed_precondition: unable to destroy machine, not currently stopped',
        false,
        undefined,
      );
    }
    this.set(m, 'destroying');
    if (this.mode === 'immediate') this.set(m, 'destroyed');
  }

  async start(machineId: string): Promise<void> {
    this.check('start', machineId);
    const m = this.mustFind('start', machineId);
    if (m.state !== 'created' && m.state !== 'stopped' && m.state !== 'suspended') {
      throw new FlyApiError(
        'start',
        412,
        `failed_precondition: unable to start machine ${m.id} from current state: '${m.state}'`,
        false,
        undefined,
      );
    }
    this.set(m, 'starting');
    if (this.mode === 'immediate') this.started(m);
  }

  async update(
    machineId: string,
    input: CreateMachineInput,
    opts: { currentVersion?: string } = {},
  ): Promise<FlyMachine> {
    this.check('update', machineId);
    const m = this.mustFind('update', machineId);
    const refuse = (why: string): FlyApiError =>
      new FlyApiError('update', 412, `failed_precondition: ${why}`, false, undefined);
    if (m.state === 'destroyed' || m.state === 'destroying')
      throw refuse(`machine ${m.id} is ${m.state}`);
    if (opts.currentVersion !== undefined && opts.currentVersion !== m.instanceId)
      throw refuse(`current_version ${opts.currentVersion} is not the version of machine ${m.id}`);
    m.input = input;
    m.metadata = { ...input.metadata };
    m.behaviour = this.behaviourFor(input) ?? {};
    m.instanceId = ulid(this.clock.now());
    m.updatedAt = this.clock.now();
    if (RUNNING.includes(m.state)) {
      // The process is replaced: stopped, then started with the new config unless skipLaunch.
      this.set(m, 'stopping');
      this.set(m, 'stopped');
      if (!input.skipLaunch) {
        this.set(m, 'starting');
        if (this.mode === 'immediate') this.started(m);
      }
    }
    return this.view(m);
  }

  async getMetadata(machineId: string): Promise<Record<string, string>> {
    this.check('getMetadata', machineId);
    return { ...this.mustFind('getMetadata', machineId).metadata };
  }

  async setMetadata(machineId: string, key: string, value: string): Promise<void> {
    this.check('setMetadata', machineId);
    const m = this.mustLive('setMetadata', machineId);
    m.metadata = { ...m.metadata, [key]: value };
    m.updatedAt = this.clock.now();
  }

  async deleteMetadata(machineId: string, key: string): Promise<void> {
    this.check('deleteMetadata', machineId);
    const m = this.mustLive('deleteMetadata', machineId);
    const { [key]: _gone, ...rest } = m.metadata;
    m.metadata = rest;
    m.updatedAt = this.clock.now();
  }

  // ---- internals -------------------------------------------------------------------------------

  /** A machine whose metadata may still change: not destroyed. */
  private mustLive(op: string, id: string): FakeMachine {
    const m = this.mustFind(op, id);
    if (m.state === 'destroyed')
      throw new FlyApiError(
        op,
        412,
        `failed_precondition: machine ${m.id} is destroyed`,
        false,
        undefined,
      );
    return m;
  }

  private started(m: FakeMachine): void {
    this.set(m, 'started');
    if (m.behaviour.exitCode !== undefined) {
      const code = m.behaviour.exitCode;
      queueMicrotask(() => this.exit(m.id, code));
    }
  }

  private stopped(m: FakeMachine): void {
    this.set(m, 'stopped');
    if (m.input.autoDestroy) {
      this.set(m, 'destroying');
      this.set(m, 'destroyed');
    }
  }

  private set(m: FakeMachine, state: FlyMachineState): void {
    m.state = state;
    m.updatedAt = this.clock.now();
    m.history.push(state);
    for (const w of [...this.waiters]) w();
  }

  /** Record the call and throw a scripted failure if one is queued. */
  private check(op: FlyAction, machineId?: string): void {
    const failure = this.script.take(op);
    if (failure)
      throw this.record(
        { op, ...(machineId ? { machineId } : {}), failed: failure.status },
        failure,
      );
    this.calls.push({ op, ...(machineId ? { machineId } : {}) });
  }

  private record(call: FakeCall, f: ScriptedFailure): FlyApiError {
    this.calls.push(call);
    return scriptedError(call.op, f);
  }

  private mustFind(op: string, id: string): FakeMachine {
    const m = this.machines.get(id);
    if (!m) throw new FlyApiError(op, 404, 'not_found: machine not found', false, undefined);
    return m;
  }

  private view(m: FakeMachine): FlyMachine {
    return {
      ...machineIdentity(m, m.privateIp),
      createdAt: new Date(m.createdAt).toISOString(),
      updatedAt: new Date(m.updatedAt).toISOString(),
      metadata: { ...m.metadata },
    };
  }
}
