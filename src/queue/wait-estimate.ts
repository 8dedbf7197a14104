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
 * Expected wait of the user at `place`: until the next admission step, plus the steps the
 * per-tick limits need for the places ahead, or, for a place beyond the free slots, the time the
 * slots still needed take to come back, whichever is longer. With every slot held (a line is
 * waiting), slots come back at cap per mean time held plus the half step until they are filled
 * again (Little's law). Unknown beyond the free slots until releasesToKnow(cap) slots came back.
 */
export function estimateWait(place: PlaceInLine, rule: AdmissionRule, measured: LineMeasures): WaitEstimate {
  // Steps take as long as measured, at least ADMISSION_INTERVAL_MS. A status is read at any point
  // of a step, so the next one is half a step away, and the user hears of it at the next watch
  // tick, half an interval later: one interval when the steps keep to it.
  const stepMs = Math.max(rule.intervalMs, measured.stepMs ?? 0);
  const nextStepMs = (stepMs + rule.intervalMs) / 2;
  const known = (waitMs: number): WaitEstimate => ({
    known: true,
    waitMs: Math.round(waitMs),
    admissionMs: place.nowMs + Math.round(waitMs),
  });
  if (place.position <= admissionsThisTick({ active: place.activeUsers }, rule)) return known(nextStepMs);
  const perTick = Math.min(rule.stepLimit, rule.admitLimit ?? Infinity);
  const pacedMs = (Math.ceil(place.position / perTick) - 1) * stepMs;
  const slotsNeeded = place.position - Math.max(0, rule.cap - place.activeUsers);
  if (slotsNeeded <= 0) return known(nextStepMs + pacedMs);
  if (rule.cap <= 0 || measured.sessionMs === undefined || measured.releases < releasesToKnow(rule.cap))
    return { known: false };
  // A slot given back stays free until the next step fills it: half a step on average.
  const cycleMs = Math.min(measured.sessionMs, rule.activeTtlMs) + stepMs / 2;
  return known(nextStepMs + Math.max(pacedMs, (slotsNeeded / rule.cap) * cycleMs));
}

/** One admission tick of a concert, as the measurement needs it. */
export interface TickSample {
  /** Epoch ms of the tick (the store's clock). */
  atMs: number;
  /** The concert's running counts (every process): slots given back, and the active ms they left unused. Undefined where the store keeps none. */
  released: { total: number; unusedMs: number } | undefined;
  /** Slots held after the tick. */
  heldSlots: number;
  /** ACTIVE_TOKEN_TTL of the concert: a slot given back with `u` ms unused was held TTL − u. */
  activeTtlMs: number;
}

/** What a concert's recent ticks measured. */
export interface LineMeasures {
  /** How long admitted users keep their slots, on average, as measured lately; undefined before one was given back. */
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
  /** Exponentially weighted sums over ticks (see createLineMeter). */
  released: number;
  heldByReleasedMs: number;
  heldByAllMs: number;
  steps: number;
  stepsMs: number;
  /** Not weighted: every slot given back since the first tick seen. */
  releases: number;
}

/**
 * Per process, per concert, from the running counts each admission tick reads, weighted towards
 * recent ticks: the mean time between steps, and two measures of the mean time a slot is kept,
 * each wrong in its own direction, of which the shorter is used. (a) The time the slots given
 * back were held: it lags, as it describes users admitted a session ago, and at first only the
 * quickest have come back. (b) The slot time held by everyone per slot given back: current, but
 * right after a sale opens every slot is young and none comes back for a while, which it reads
 * as "almost never". Under a load that eases (a crowd's joins are over), (a) runs long; at the
 * start (b) does.
 */
export function createLineMeter(tauMs: number = MEASURE_TAU_MS): LineMeter {
  const concerts = new Map<string, ConcertState>();
  const fresh = (): ConcertState => ({
    last: undefined,
    released: 0,
    heldByReleasedMs: 0,
    heldByAllMs: 0,
    steps: 0,
    stepsMs: 0,
    releases: 0,
  });
  return {
    observe(concertId, sample) {
      let state = concerts.get(concertId);
      if (!state) {
        if (concerts.size >= CONCERTS_TRACKED) concerts.delete(concerts.keys().next().value!);
        concerts.set(concertId, (state = fresh()));
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
      state.heldByReleasedMs = state.heldByReleasedMs * keep + Math.max(0, released * sample.activeTtlMs - unusedMs);
      state.heldByAllMs = state.heldByAllMs * keep + last.heldSlots * dtMs;
    },
    measures(concertId) {
      const state = concerts.get(concertId);
      const perRelease = (ms: number) => (state && state.released > 0 ? ms / state.released : undefined);
      const byReleased = perRelease(state?.heldByReleasedMs ?? 0);
      const byAll = perRelease(state?.heldByAllMs ?? 0);
      return {
        sessionMs: byReleased === undefined || byAll === undefined ? undefined : Math.min(byReleased, byAll),
        releases: state?.releases ?? 0,
        stepMs: state && state.steps > 0 ? state.stepsMs / state.steps : undefined,
      };
    },
  };
}
