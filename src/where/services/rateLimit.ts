/**
 * Per-client limits on the public listener: a sliding window of request times per key, and a
 * cooldown after each accepted launch. Both live in memory: a restart forgets them (ADR 0011). Memory is bounded (least recently seen keys are dropped):
 * per-IP limits stop a reloading visitor; the global cap on machines stops everything else.
 */
import { BlockList, isIP } from 'node:net';

export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 20_000,
  ) {}

  /** Count a hit; `retryAfterMs` > 0 means refused (the hit was not counted). */
  hit(key: string, now: number): { ok: boolean; remaining: number; retryAfterMs: number } {
    const from = now - this.windowMs;
    let times = this.hits.get(key);
    if (times) {
      // Re-insert to keep the map in least-recently-used order.
      this.hits.delete(key);
      while (times.length > 0 && times[0]! <= from) times.shift();
    } else times = [];
    this.hits.set(key, times);
    if (times.length >= this.limit) {
      return { ok: false, remaining: 0, retryAfterMs: times[0]! + this.windowMs - now };
    }
    times.push(now);
    if (this.hits.size > this.maxKeys) this.hits.delete(this.hits.keys().next().value!);
    return { ok: true, remaining: this.limit - times.length, retryAfterMs: 0 };
  }
}

/**
 * A pause per key after an accepted action. A request reserves the pause before it knows the
 * outcome (so two concurrent requests from one key cannot both pass), and gives it back when the
 * action was refused: only an accepted launch should make a visitor wait.
 */
export class Cooldown {
  private readonly until = new Map<string, { at: number }>();
  constructor(
    private readonly ms: number,
    private readonly maxKeys = 20_000,
  ) {}

  /** Milliseconds left before `key` may act again (0: now). */
  remaining(key: string, now: number): number {
    const u = this.until.get(key);
    if (u === undefined) return 0;
    if (u.at <= now) {
      this.until.delete(key);
      return 0;
    }
    return u.at - now;
  }

  /**
   * Take the pause for `key` from `now` if it is free: `{ release }` hands it back (a refused
   * action), and keeping it (an accepted one) needs nothing. `{ retryAfterMs }` when still paused.
   */
  reserve(key: string, now: number): { release: () => void } | { retryAfterMs: number } {
    const left = this.remaining(key, now);
    if (left > 0) return { retryAfterMs: left };
    if (this.ms <= 0) return { release: () => {} };
    const mine = { at: now + this.ms };
    this.until.delete(key);
    this.until.set(key, mine);
    if (this.until.size > this.maxKeys) this.until.delete(this.until.keys().next().value!);
    return {
      // Only our own reservation is given back (identity, not value): a later one stays.
      release: () => {
        if (this.until.get(key) === mine) this.until.delete(key);
      },
    };
  }
}

/**
 * The peers whose Fly-Client-IP header is believed: `*` (every peer), single addresses, and CIDR
 * blocks (`172.16.0.0/12`, `fdaa::/16`). An IPv4 peer on a dual-stack socket shows as
 * `::ffff:a.b.c.d` and is compared as the IPv4 address it is. On Fly the proxy reaches the app over
 * the machine's IPv4 link from 172.16.0.0/12, while other apps of the organization reach it over
 * 6PN from fdaa::/16, so trusting the IPv4 block believes the proxy and nobody else (ADR 0020).
 */
export class TrustedPeers {
  private readonly any: boolean;
  private readonly blocks = new BlockList();

  constructor(entries: readonly string[]) {
    this.any = entries.includes('*');
    for (const entry of entries) {
      if (entry === '*') continue;
      const parsed = parseTrustEntry(entry);
      if (!parsed) throw new RangeError(`not an address or CIDR block: ${JSON.stringify(entry)}`);
      if (parsed.prefix === undefined) this.blocks.addAddress(parsed.address, parsed.family);
      else this.blocks.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }

  has(peer: string | undefined): boolean {
    if (this.any) return true;
    if (peer === undefined) return false;
    const address = unmapIPv4(peer);
    const family = isIP(address);
    if (family === 0) return false;
    return this.blocks.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** `::ffff:a.b.c.d` (an IPv4 peer of a dual-stack socket) as `a.b.c.d`; anything else unchanged. */
function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
}

/** One entry of WM_TRUSTED_PROXIES: an address or `address/prefix`; undefined if it is neither. */
export function parseTrustEntry(
  entry: string,
): { address: string; family: 'ipv4' | 'ipv6'; prefix: number | undefined } | undefined {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry.trim());
  if (!m) return undefined;
  const address = unmapIPv4(m[1]!);
  const family = isIP(address);
  if (family === 0) return undefined;
  const prefix = m[2] === undefined ? undefined : Number(m[2]);
  if (prefix !== undefined && prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address, family: family === 4 ? 'ipv4' : 'ipv6', prefix };
}

/**
 * The client address: Fly-Client-IP when the request came through a proxy we trust (Fly's, or the
 * local edge proxy), else the socket peer. A header sent by anyone else changes nothing; such a
 * request is reported through `onUntrusted`.
 */
export function clientIp(
  peer: string | undefined,
  header: string | string[] | undefined,
  trusted: TrustedPeers,
  onUntrusted?: (peer: string) => void,
): string {
  const p = peer ?? 'unknown';
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return p;
  if (trusted.has(peer)) {
    const v = h.trim();
    if (isIP(v) !== 0) return v;
  } else onUntrusted?.(p);
  return p;
}

/**
 * The public listener's key for a request (see clientIp). A forged or untrusted header is logged at
 * warn once per peer (a bounded memory): another app forging it, or Fly's proxy arriving from an
 * address the trust list misses, which would put every visitor under the proxy's one key.
 */
export function clientIpOf(
  trusted: readonly string[],
  log: { warn(obj: object, msg: string): void },
): (req: {
  socket: { remoteAddress?: string | undefined };
  headers: Record<string, string | string[] | undefined>;
}) => string {
  const peers = new TrustedPeers(trusted);
  const reported = new Set<string>();
  const onUntrusted = (peer: string) => {
    if (reported.has(peer)) return;
    if (reported.size >= 1000) reported.clear();
    reported.add(peer);
    log.warn({ peer }, 'Fly-Client-IP from a peer not in WM_TRUSTED_PROXIES: keyed by the peer');
  };
  return (req) =>
    clientIp(req.socket.remoteAddress, req.headers['fly-client-ip'], peers, onUntrusted);
}
