// The wait a waiting user is told, from what the waiting room knows and what it has measured.
// Known: the admission schedule (cap, tick, per-tick limits) and the slots free now, so the
// places those slots cover go in at the next steps. Measured: how long admitted users keep their
// slots (until payment, leaving or expiry) and how long a step takes, as the admission ticks see
// them. A place beyond the free slots has no honest estimate until a slot was given back: unknown.

import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";

/** The line as a status read it: the user's 1-based place and the slots held at that moment. */
export interface PlaceInLine {
  position: number;
  activeUsers: number;
  /** Epoch ms of the read. */
  nowMs: number;
}

export type WaitEstimate = { known: true; waitMs: number; admissionMs: number } | { known: false };

/**
 * Slots that must have come back before their mean time held says anything: the first ones are
 * the quickest users (or one who left at once), and would promise everybody else far too short a wait.
 */
export function releasesToKnow(cap: number): number {
  return Math.max(1, Math.ceil(cap * 0.05));
}

/**
 * Expected wait of the user at `place`: one admission step (as long as they measure, at least
 * ADMISSION_INTERVAL_MS), plus the steps the per-tick limits need for the places ahead, or, for
 * a place beyond the free slots, the time the slots still needed take to come back, whichever is
 * longer. With every slot held (a line is waiting), slots come back at cap per mean time held
 * (Little's law). Unknown beyond the free slots until releasesToKnow(cap) slots came back.
 */
export function estimateWait(place: PlaceInLine, rule: AdmissionRule, measured: LineMeasures): WaitEstimate {
  const stepMs = Math.max(rule.intervalMs, measured.stepMs ?? 0);
  const known = (waitMs: number): WaitEstimate => ({
    known: true,
    waitMs: Math.round(waitMs),
    admissionMs: place.nowMs + Math.round(waitMs),
  });
  if (place.position <= admissionsThisTick({ active: place.activeUsers }, rule)) return known(stepMs);
  const perTick = Math.min(rule.stepLimit, rule.admitLimit ?? Infinity);
  const pacedMs = (Math.ceil(place.position / perTick) - 1) * stepMs;
  const slotsNeeded = place.position - Math.max(0, rule.cap - place.activeUsers);
  if (slotsNeeded <= 0) return known(stepMs + pacedMs);
  if (rule.cap <= 0 || measured.sessionMs === undefined || measured.releases < releasesToKnow(rule.cap))
    return { known: false };
  const sessionMs = Math.min(measured.sessionMs, rule.activeTtlMs);
  return known(stepMs + Math.max(pacedMs, (slotsNeeded / rule.cap) * sessionMs));
}

/** One admission tick of a concert, as the measurement needs it. */
export interface TickSample {
  /** Epoch ms of the tick (the store's clock). */
  atMs: number;
  /** The concert's running counts (every process): slots given back, and the active ms they left unused. Undefined where the store keeps none. */
  released: { total: number; unusedMs: number } | undefined;
  /** ACTIVE_TOKEN_TTL of the concert: a slot given back with `u` ms unused was held TTL − u. */
  activeTtlMs: number;
}

/** What a concert's recent ticks measured. */
export interface LineMeasures {
  /** How long admitted users kept their slots lately, on average; undefined before one was given back. */
  sessionMs: number | undefined;
  /** Slots given back since this process started measuring the concert. */
  releases: number;
  /** Time between this process's admission steps lately; undefined before two. */
  stepMs: number | undefined;
}

export interface LineMeter {
  /** Feeds one tick; the first of a concert (or after a gap in the counts) only sets the baseline. */
  observe(concertId: string, sample: TickSample): void;
  measures(concertId: string): LineMeasures;
}

/** Time constant of the measurements: recent ticks weigh most, older ones fade. */
export const MEASURE_TAU_MS = 5000;
const CONCERTS_TRACKED = 10_000;

interface ConcertState {
  last: TickSample | undefined;
  /** Exponentially weighted sums: slots given back and the ms they were held; steps and their ms. */
  released: number;
  heldMs: number;
  steps: number;
  stepsMs: number;
  /** Not weighted: every slot given back since the first tick seen. */
  releases: number;
}

/**
 * Per process, per concert, from the running counts each admission tick reads: the mean time a
 * given-back slot was held, weighted towards recent releases, and the mean time between steps.
 * The mean of the slots given back, not the rate they come back at, because right after a sale
 * opens every slot is young and none comes back for a while: a rate would read as "almost never".
 */
export function createLineMeter(tauMs: number = MEASURE_TAU_MS): LineMeter {
  const concerts = new Map<string, ConcertState>();
  return {
    observe(concertId, sample) {
      let state = concerts.get(concertId);
      if (!state) {
        if (concerts.size >= CONCERTS_TRACKED) concerts.delete(concerts.keys().next().value!);
        concerts.set(
          concertId,
          (state = { last: undefined, released: 0, heldMs: 0, steps: 0, stepsMs: 0, releases: 0 }),
        );
      }
      const { last } = state;
      state.last = sample.released === undefined ? undefined : sample;
      if (last?.released === undefined || sample.released === undefined) return;
      const released = sample.released.total - last.released.total;
      const unusedMs = sample.released.unusedMs - last.released.unusedMs;
      const dtMs = sample.atMs - last.atMs;
      // Counts that went back belong to a store rebuilt from scratch: a new baseline.
      if (released < 0 || unusedMs < 0 || dtMs <= 0) return;
      const keep = Math.exp(-dtMs / tauMs);
      state.steps = state.steps * keep + 1;
      state.stepsMs = state.stepsMs * keep + dtMs;
      state.releases += released;
      state.released = state.released * keep + released;
      state.heldMs = state.heldMs * keep + Math.max(0, released * sample.activeTtlMs - unusedMs);
    },
    measures(concertId) {
      const state = concerts.get(concertId);
      return {
        sessionMs: state && state.released > 0 ? state.heldMs / state.released : undefined,
        releases: state?.releases ?? 0,
        stepMs: state && state.steps > 0 ? state.stepsMs / state.steps : undefined,
      };
    },
  };
}
