/**
 * Launch outcomes and phase durations (ADR 0016), from the runtime's changes: each phase is timed
 * from the times of the facts that start and end it, and counted by the instance that appended the
 * fact that ended it (each fact is appended once cluster-wide, so the sum over instances counts each
 * launch once); the times of earlier facts come from every change folded here, ours or not.
 */
import { Counter, Histogram, type LabelValues, type Registry } from 'prom-client';
import { launchChart } from '../../machines/index.js';
import type { ActorChange } from '../runtime/actorRuntime.js';
import { childrenByKey, regionLabel, sourceLabel } from './metricLabels.js';

/** The launch phases whose durations are measured, from fact times (the facts' `at`). */
export const LAUNCH_PHASES = [
  'click_to_created',
  'created_to_started',
  'started_to_listening',
  'click_to_ready',
  'ready_to_destroyed',
] as const;
export type LaunchPhase = (typeof LAUNCH_PHASES)[number];

const PHASE_BUCKETS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600, 1800, 3600,
];

/** Per launch, the times (epoch ms) of the facts that end a phase, while the launch is open. */
interface LaunchTimes {
  requested?: number;
  created?: number;
  started?: number;
  listening?: number;
  ready?: number;
}

type OutcomeLabels = LabelValues<'region' | 'source' | 'outcome'>;

export class LaunchMetrics {
  private readonly launches: Counter<'region' | 'source' | 'outcome'>;
  private readonly phases: Histogram<'region' | 'phase'>;
  private readonly times = new Map<string, LaunchTimes>();
  private readonly phaseOf = childrenByKey((key) => {
    const [region, phase] = key.split(' ') as [string, string];
    return this.phases.labels({ region, phase });
  });

  constructor(registers: Registry[]) {
    this.launches = new Counter({
      name: 'wm_launches_total',
      help: 'Launches that ended their wait: outcome ready, failed:<reason> or refused:<code>.',
      labelNames: ['region', 'source', 'outcome'],
      registers,
    });
    this.phases = new Histogram({
      name: 'wm_launch_phase_seconds',
      help: 'Duration of each launch phase, from the times of the facts that start and end it.',
      labelNames: ['region', 'phase'],
      buckets: PHASE_BUCKETS,
      registers,
    });
  }

  /** POST /launches (or the dashboard's) said no before a launch existed. */
  refused(region: string, source: string, code: string): void {
    this.launches.inc({
      region: regionLabel(region),
      source: sourceLabel(source),
      outcome: `refused:${code}`,
    });
  }

  /** One change of a launch actor. */
  changed({ record: rec, event: e, local }: ActorChange): void {
    const launch = launchChart.summary(rec.snapshot);
    const at = Date.parse(e.at);
    const region = regionLabel(launch.region);
    const t = this.times.get(rec.stream) ?? {};
    this.times.set(rec.stream, t);
    const phase = (p: LaunchPhase, from: number | undefined) => {
      if (local && from !== undefined)
        this.phaseOf(`${region} ${p}`).observe(Math.max(0, at - from) / 1000);
    };
    const data = e.data as { state?: string };
    if (e.type === 'launch.requested') t.requested ??= at;
    else if (e.type === 'fly.machineCreated' && t.created === undefined) {
      t.created = at;
      phase('click_to_created', t.requested);
    } else if (
      e.type === 'fly.machineObserved' &&
      data.state === 'started' &&
      t.started === undefined
    ) {
      t.started = at;
      phase('created_to_started', t.created);
    } else if (e.type === 'vm.listening' && t.listening === undefined) {
      t.listening = at;
      phase('started_to_listening', t.started);
    }
    const labels: OutcomeLabels = { region, source: sourceLabel(launch.source) };
    if (t.ready === undefined && launch.state === 'redirect') {
      t.ready = at;
      phase('click_to_ready', t.requested);
      if (local) this.launches.inc({ ...labels, outcome: 'ready' });
    } else if (launch.state === 'destroyed') {
      phase('ready_to_destroyed', t.ready);
    } else if (launch.state === 'failed') {
      if (local) this.launches.inc({ ...labels, outcome: `failed:${launch.reason ?? 'unknown'}` });
    }
    if (!launch.open) this.times.delete(rec.stream);
  }

  clear(): void {
    this.times.clear();
  }
}
