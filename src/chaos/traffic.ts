/**
 * The visitors of a chaos run: `POST /launches` straight to a landing instance (waiting for it when
 * the harness just killed it), and after each restart `GET /launches/:id` for every launch answered
 * 202 so far; every answer, or why there was none, is kept for the checks.
 */
import { errorMessage } from '../shared/errors.js';
import type { HttpAnswer, KnownProbe } from './checks.js';
import { http, mapLimit } from './http.js';
import { sleep, waitUntil } from './procs.js';
import type { ChaosFigures } from './report.js';
import { READY_WAIT_MS, type Landing } from './stack.js';

export interface Accepted {
  launchId: string;
  instance: string;
  sentAt: number;
  answeredAt: number;
  round: number;
}

/** Asked as an operator would, past the per-visitor limits and never replayed. */
const READ_HEADERS = { 'fly-replay-src': 'chaos-harness', 'fly-client-ip': '10.255.255.254' };

/** A launch's public view (`GET /launches/:id`) from a landing instance. */
export function readLaunch(l: Landing, launchId: string): ReturnType<typeof http> {
  return http(`http://127.0.0.1:${l.port}/launches/${launchId}`, {
    headers: READ_HEADERS,
    timeoutMs: 15_000,
  });
}

export class Traffic {
  readonly answers: HttpAnswer[] = [];
  readonly probes: KnownProbe[] = [];
  readonly accepted: Accepted[] = [];

  constructor(
    private readonly fig: ChaosFigures,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async postLaunch(l: Landing, ip: string, round: number): Promise<void> {
    this.fig.launchesSent++;
    // A visitor whose click finds the instance down (killed by us) clicks again once it is back:
    // a launch is worth more to the checks than a refused connection.
    if (l.down) {
      this.fig.waitedForRestart++;
      await waitUntil(async () => !l.down, READY_WAIT_MS, 50, this.signal);
    }
    const epoch = l.epoch;
    const wasDown = l.down;
    const sentAt = Date.now();
    const answer = { instance: l.id, method: 'POST', path: '/launches' };
    try {
      const r = await http(`http://127.0.0.1:${l.port}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'fly-client-ip': ip },
        body: '{}',
      });
      const body = (r.body ?? {}) as { launchId?: string; code?: string };
      this.answers.push({
        at: Date.now(),
        ...answer,
        status: r.status,
        ...(body.code ? { code: body.code } : {}),
        instanceKilled: false,
        ...(body.launchId ? { launchId: body.launchId } : {}),
      });
      this.count(r.status, body, { instance: l.id, sentAt, round });
    } catch (err) {
      const killed = wasDown || l.down || l.epoch !== epoch;
      if (killed) this.fig.cutByKill++;
      this.answers.push({
        at: Date.now(),
        ...answer,
        error: errorMessage(err),
        instanceKilled: killed,
      });
    }
  }

  private count(
    status: number,
    body: { launchId?: string; code?: string },
    sent: { instance: string; sentAt: number; round: number },
  ): void {
    const fig = this.fig;
    if (status === 202 && body.launchId) {
      fig.accepted++;
      this.accepted.push({
        launchId: body.launchId,
        instance: sent.instance,
        sentAt: sent.sentAt,
        answeredAt: Date.now(),
        round: sent.round,
      });
    } else if (status === 503 && body.code === 'CAPACITY') fig.capacity++;
    else {
      const k = `${status} ${body.code ?? ''}`.trim();
      fig.otherAnswers[k] = (fig.otherAnswers[k] ?? 0) + 1;
    }
  }

  /** GET /launches/:id for every accepted launch on one instance, right after a restart. */
  async knownCheck(l: Landing, restart: number): Promise<void> {
    const ids = this.accepted.map((a) => a.launchId);
    await mapLimit(ids, 8, async (launchId) =>
      this.probes.push(await this.probe(l, restart, launchId)),
    );
  }

  private async probe(l: Landing, restart: number, launchId: string): Promise<KnownProbe> {
    const path = `/launches/${launchId}`;
    let last: KnownProbe = {
      launchId,
      instance: l.id,
      restart,
      status: 'error',
      error: 'not asked',
    };
    for (let attempt = 1; attempt <= 6; attempt++) {
      const epoch = l.epoch;
      try {
        const r = await readLaunch(l, launchId);
        const code = (r.body as { code?: string } | undefined)?.code;
        this.answers.push({
          at: Date.now(),
          instance: l.id,
          method: 'GET',
          path,
          status: r.status,
          ...(code ? { code } : {}),
          instanceKilled: false,
          launchId,
        });
        last = { launchId, instance: l.id, restart, status: r.status };
        if (r.status === 200) break;
        // A 404 is asked once more (a read racing the boot); anything else a few times.
        if (r.status === 404 && attempt >= 2) break;
      } catch (err) {
        this.answers.push({
          at: Date.now(),
          instance: l.id,
          method: 'GET',
          path,
          error: errorMessage(err),
          instanceKilled: l.down || l.epoch !== epoch,
        });
        last = { launchId, instance: l.id, restart, status: 'error', error: errorMessage(err) };
      }
      await sleep(attempt === 1 ? 1000 : 500, this.signal);
    }
    return last;
  }
}
