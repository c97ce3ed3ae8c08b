/**
 * Private addresses for emulated machines. On Linux all of 127/8 is loopback, so each machine gets
 * its own 127.0.1.x and binds the service's real internal port, as it would bind its 6PN address
 * on Fly. Elsewhere every machine shares 127.0.0.1 and gets a free port of its own.
 */
import { createServer } from 'node:net';

export type AddressMode = 'loopback' | 'port';

export interface MachineAddress {
  readonly ip: string;
  readonly port: number;
}

export function defaultAddressMode(): AddressMode {
  return process.platform === 'linux' ? 'loopback' : 'port';
}

/** Resolves true when ip:port can be bound right now. */
function canBind(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: ip, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: ip, port: 0 }, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

let poolCount = 0;

export class AddressPool {
  private readonly inUse = new Set<string>();
  private cursor: number;
  private static readonly FIRST = 2;
  private static readonly LAST = 254;

  constructor(
    readonly mode: AddressMode,
    /** The first three octets of the loopback block, e.g. "127.0.1". */
    private readonly prefix = '127.0.1',
  ) {
    // Start somewhere different in each process and pool, so emulators running side by side (two
    // test files at once) rarely probe the same address first.
    const span = AddressPool.LAST - AddressPool.FIRST + 1;
    this.cursor = (process.pid * 7 + poolCount++ * 37) % span;
  }

  /** An address for a machine whose service listens on `internalPort`; undefined when none is free. */
  async acquire(internalPort: number): Promise<MachineAddress | undefined> {
    if (this.mode === 'port') {
      const port = await freePort('127.0.0.1');
      this.inUse.add(`127.0.0.1:${port}`);
      return { ip: '127.0.0.1', port };
    }
    const span = AddressPool.LAST - AddressPool.FIRST + 1;
    for (let i = 0; i < span; i++) {
      const host = AddressPool.FIRST + ((this.cursor + i) % span);
      const ip = `${this.prefix}.${host}`;
      const key = `${ip}:${internalPort}`;
      if (this.inUse.has(key)) continue;
      // Reserve before probing so a concurrent acquire cannot pick the same address.
      this.inUse.add(key);
      if (await canBind(ip, internalPort)) {
        // Round robin: a released address is reused last.
        this.cursor = (this.cursor + i + 1) % span;
        return { ip, port: internalPort };
      }
      this.inUse.delete(key);
    }
    return undefined;
  }

  release(addr: MachineAddress): void {
    this.inUse.delete(`${addr.ip}:${addr.port}`);
  }
}
