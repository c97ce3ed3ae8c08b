/**
 * The public wire contract of the landing app: request bodies, responses and SSE messages that
 * browsers see. Server and browser bundle import the same types (the browser only the types).
 */
import { z } from 'zod';
import {
  FAILURE_REASONS,
  LAUNCH_SOURCES,
  LAUNCH_STATUSES,
  MACHINE_SOURCES,
  MACHINE_STATUSES,
  type FailureReason,
  type LaunchStatus,
} from '../../machines/vocabulary.js';

export const launchStatus = z.enum(LAUNCH_STATUSES);
export type { LaunchStatus };

export const failureReason = z.enum(FAILURE_REASONS);
export type { FailureReason };

/** One step of a launch's history: the status it reached, the fact that moved it, and when. */
export const launchTimelineStep = z.object({
  step: launchStatus,
  fact: z.string(),
  at: z.string(),
});
export type LaunchTimelineStep = z.infer<typeof launchTimelineStep>;

/** A ready launch's click→ready time, and how it compared with its region's launches that day. */
export const launchReadyTime = z.object({
  ms: z.number().int(),
  /** Percentage of the region's other launches that UTC day that took longer (none: absent). */
  fasterThanPct: z.number().int().min(0).max(100).optional(),
  /** How many other launches it was compared with. */
  of: z.number().int(),
});
export type LaunchReadyTime = z.infer<typeof launchReadyTime>;

/**
 * What a launch looks like to a visitor: `GET /launches/:id`, and one message per change on
 * `GET /launches/:id/events`. Keys in the order the launches service builds a view, since a reply
 * schema writes them in its own order.
 */
export const launchView = z.object({
  launchId: z.string(),
  status: launchStatus,
  region: z.string(),
  source: z.enum(LAUNCH_SOURCES),
  /** Server time of the fact that produced this status (ISO). */
  at: z.string(),
  requestedAt: z.string(),
  /** Stream version: the SSE id, for Last-Event-ID resume. */
  version: z.number().int(),
  machineId: z.string().optional(),
  /** Where the browser goes when `status` is `ready`. */
  url: z.string().optional(),
  reason: failureReason.optional(),
  /** Human words for the failure, safe to show. */
  message: z.string().optional(),
  /** Its statuses so far, from its facts' times (absent when not at hand). */
  timeline: z.array(launchTimelineStep).max(16).optional(),
  /** Once ready: its click→ready time and how that compared. */
  readyTime: launchReadyTime.optional(),
  /** The W3C trace id of the launch: one grep over every log line and hop (docs/adr/0021). */
  traceId: z.string().optional(),
  /** Where its machine was made, when not in `region` (that region was full). */
  placedIn: z.string().optional(),
  /** Regions Fly said were full for this launch, in the order tried. */
  fullRegions: z.array(z.string()).max(8).optional(),
});
export type LaunchView = z.infer<typeof launchView>;

/**
 * `POST /launches` (and `/dash/launches`) body, JSON or a form. `region` is optional: the visitor's
 * edge region (Fly-Region) is the default. No body at all is the same as `{}`.
 */
export const launchRequestBody = z
  .strictObject({ region: z.string().max(16).optional() })
  .nullish();

export const launchAccepted = z.object({
  launchId: z.string(),
  region: z.string(),
  status: launchStatus,
  /** SSE stream of this launch. */
  events: z.string(),
  traceId: z.string().optional(),
});
export type LaunchAccepted = z.infer<typeof launchAccepted>;

/** Every error body: Fastify's shape with a stable `code` (one schema for all our listeners). */
export { errorBodySchema, type ErrorBody } from '../shared/errorBody.js';

/** One live Useless Machine on the map (fleet stream). */
export const fleetMachine = z.object({
  machineId: z.string(),
  region: z.string(),
  status: z.enum(MACHINE_STATUSES),
  source: z.enum(MACHINE_SOURCES),
  launchId: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type FleetMachine = z.infer<typeof fleetMachine>;

export const capacityView = z.object({ live: z.number().int(), limit: z.number().int() });
export type CapacityView = z.infer<typeof capacityView>;

/**
 * Fleet SSE (`GET /events`): on connect one `fleet` message with everything, then `machine`
 * (added or changed), `machineGone` and `capacity` messages as they happen.
 */
export const fleetSnapshot = z.object({
  machines: z.array(fleetMachine),
  capacity: capacityView,
  at: z.string(),
});
export type FleetSnapshot = z.infer<typeof fleetSnapshot>;
export const machineGone = z.object({ machineId: z.string(), at: z.string() });
export type MachineGone = z.infer<typeof machineGone>;

/** A region's typical click→ready time: the median of its last `count` ready launches. */
export const regionTimes = z.object({ medianMs: z.number().int(), count: z.number().int() });
export type RegionTimesView = z.infer<typeof regionTimes>;
/**
 * Fleet SSE `launchTimes`: the typical launch time of every region that has one (sent on connect
 * and, at most once a second, when it changes).
 */
export const launchTimesView = z.object({
  regions: z.record(z.string(), regionTimes),
  at: z.string(),
});
export type LaunchTimesView = z.infer<typeof launchTimesView>;

export type FleetMessage =
  | { event: 'fleet'; data: FleetSnapshot }
  | { event: 'launchTimes'; data: LaunchTimesView }
  | { event: 'machine'; data: FleetMachine }
  | { event: 'machineGone'; data: MachineGone }
  | { event: 'capacity'; data: CapacityView };

/** Words a visitor reads for each failure reason. */
export const FAILURE_WORDS: Record<FailureReason, string> = {
  capacity: 'Every Useless Machine slot is taken. Try again in a minute.',
  rateLimited: 'The cloud asked us to slow down. Try again shortly.',
  flyError: 'The cloud could not create a machine just now.',
  readyTimeout: 'The machine did not get ready in time, so it was removed.',
  machineLost: 'The machine stopped before it was ready.',
  noCapacity: 'The cloud is full in your region and the nearest ones. Try again in a minute.',
};
