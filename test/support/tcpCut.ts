/**
 * A TCP relay a test can cut and heal: it listens on a free loopback port and pipes every
 * connection to a target. cut() destroys every relayed connection and refuses new ones (a network
 * partition as both ends see it: resets, then nothing); heal() lets connections through again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

const HOST = '127.0.0.1';

export class TcpCut {
  private readonly sockets = new Set<Socket>();
  private cutNow = false;
  /** Connections accepted while healed, over the relay's life (a route reconnecting shows here). */
  accepted = 0;
  /** Connections refused while cut. */
  refused = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listen on a free loopback port and relay to `target` on loopback. */
  static async start(targetPort: number, targetHost = HOST): Promise<TcpCut> {
    const holder: { relay?: TcpCut } = {};
    const server = createServer((client) => holder.relay!.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port for the relay');
    holder.relay = new TcpCut(server, addr.port);
    return holder.relay;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Open relayed connections (each side counts once). */
  get open(): number {
    return this.sockets.size;
  }

  /** Partition: drop every relayed connection and refuse new ones until heal(). */
  cut(): void {
    this.cutNow = true;
    for (const s of [...this.sockets]) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.cutNow = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(client: Socket, port: number, host: string): void {
    if (this.cutNow) {
      this.refused++;
      client.destroy();
      return;
    }
    this.accepted++;
    const upstream = createConnection({ host, port });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.setNoDelay(true);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
