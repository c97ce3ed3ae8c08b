/**
 * Every machine the emulator has made, destroyed ones included: ids, lookups by app, the name
 * check, list filters, and the live instances the edge proxy routes to.
 */
import { randomBytes } from 'node:crypto';
import { EmulatorError, notFound } from './emulatorError.js';
import type { EmulatedMachine, MachineInstance } from './machine.js';

export interface ListFilter {
  metadata: Record<string, string>;
  includeDeleted: boolean;
  region?: string;
  states?: string[];
}

export class MachineStore {
  private readonly machines = new Map<string, EmulatedMachine>();

  /** A fresh machine id, 14 hex characters like Fly's. */
  newId(): string {
    let id: string;
    do id = randomBytes(7).toString('hex');
    while (this.machines.has(id));
    return id;
  }

  add(m: EmulatedMachine): void {
    this.machines.set(m.id, m);
  }

  get(id: string): EmulatedMachine | undefined {
    return this.machines.get(id);
  }

  all(): EmulatedMachine[] {
    return [...this.machines.values()];
  }

  /** The machine of this app, or Fly's 404. */
  find(app: string, id: string): EmulatedMachine {
    const m = this.machines.get(id);
    if (!m || m.app !== app) throw notFound();
    return m;
  }

  assertNameFree(app: string, name: string | undefined): void {
    if (name === undefined) return;
    const taken = this.all().some(
      (m) => m.app === app && m.name === name && m.state !== 'destroyed',
    );
    if (taken)
      throw new EmulatorError(409, `already_exists: a machine named "${name}" already exists`);
  }

  /** An app's machines that pass the filter, oldest first. */
  list(app: string, filter: ListFilter): EmulatedMachine[] {
    return this.all()
      .filter((m) => m.app === app)
      .filter((m) => filter.includeDeleted || m.state !== 'destroyed')
      .filter((m) => !filter.region || m.region === filter.region)
      .filter((m) => !filter.states || filter.states.includes(m.state))
      .filter((m) =>
        Object.entries(filter.metadata).every(([k, v]) => m.config.metadata?.[k] === v),
      )
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Live (not destroyed), uncordoned machines of an app with an address: what the proxy routes to. */
  instances(app: string): MachineInstance[] {
    return this.all()
      .filter((m) => m.app === app && m.state !== 'destroyed' && !m.cordoned && m.address)
      .map((m) => ({ id: m.id, region: m.region, url: m.url!, state: m.state }));
  }
}
