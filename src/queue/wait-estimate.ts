// The wait a waiting user is told, from what the waiting room knows and what it has measured.
// Known: the admission schedule (cap, tick, per-tick limits), the slots free now, and the
// concert's expected session (how long an admitted user keeps a slot: an operator's prior).
// Measured: how fast the line has moved lately (slots given back and filled again while users
// waited) and how long a step takes, as the admission ticks see them. The measurement replaces
// the prior as evidence accumulates.

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
 * How much the prior weighs, in ms of a waiting line it stands for: half an expected session.
 * The first slots given back are the quickest users (or one who left at once); measured over
 * less than that, they would promise everybody else far too short a wait.
 */
const PRIOR_WEIGHT = 0.5;

/**
 * Expected wait of the user at `place`: until the next admission step, plus the steps the
 * per-tick limits need for the places ahead, or, for a place beyond the free slots, the time the
 * slots still needed take to be given back and filled, whichever is longer. Slots are filled at
 * the rate measured lately while users waited, blended with the prior of cap slots per expected
 * session (as if PRIOR_WEIGHT of a session had been seen at that rate), and never slower than the
 * active TTL allows. Without a prior (expected session 0) a place beyond the free slots is unknown
 * until the line has been seen to move.
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
  const perMs = fillRate(rule, measured);
  if (perMs === undefined) return { known: false };
  return known(nextStepMs + Math.max(pacedMs, slotsNeeded / perMs));
}

/** Slots filled per ms while a line waits: measured, blended with the prior; undefined when neither says anything. */
export function fillRate(rule: AdmissionRule, measured: LineMeasures): number | undefined {
  if (rule.cap <= 0) return undefined;
  const priorWeightMs = PRIOR_WEIGHT * rule.expectedSessionMs;
  const priorPerMs = rule.expectedSessionMs > 0 ? rule.cap / rule.expectedSessionMs : 0;
  if (priorWeightMs <= 0 && measured.filled < Math.max(1, Math.ceil(rule.cap * 0.05))) return undefined;
  const perMs = (measured.filled + priorPerMs * priorWeightMs) / (measured.waitedMs + priorWeightMs);
  // Every slot comes back by ACTIVE_TOKEN_TTL at the latest.
  return Math.max(perMs, rule.cap / rule.activeTtlMs);
}

/** One admission tick of a concert, as the measurement needs it. */
export interface TickSample {
  /** Epoch ms of the tick (the store's clock). */
  atMs: number;
  /** The concert's running count of slots given back (every process); undefined where the store keeps none. */
  releasedTotal: number | undefined;
  /** Slots held after the tick. */
  heldSlots: number;
  /** Users waiting after the tick. */
  waiting: number;
  /** The concert's cap (MAX_ACTIVE_USERS or its own setting). */
  cap: number;
}

/** What a concert's recent ticks measured, exponentially weighted towards recent ticks. */
export interface LineMeasures {
  /** Slots given back and filled again, by any process, between ticks after which users waited. */
  filled: number;
  /** The time those ticks spanned (ms). */
  waitedMs: number;
  /** Time between this process's admission steps lately; undefined before two. */
  stepMs: number | undefined;
}

export interface LineMeter {
  /** Feeds one tick; the first of a concert (or after a gap in the counts) only sets the baseline. */
  observe(concertId: string, sample: TickSample): void;
  measures(concertId: string): LineMeasures;
}

/**
 * Time constant of the measurements: long enough to span a few turns of the whole cap when
 * sessions end in waves (a crowd admitted at once pays at about the same time).
 */
export const MEASURE_TAU_MS = 30_000;
const CONCERTS_TRACKED = 10_000;

interface ConcertState extends LineMeasures {
  last: TickSample | undefined;
  steps: number;
  stepsMs: number;
}

/**
 * Per process, per concert, from the counts each admission tick reads. Every slot given back
 * lowers the held count and every admission raises it, so the admissions of every process
 * between two ticks are the change in slots held plus the slots given back. Of those, the ones
 * beyond the slots that were free already measure how fast the line moves once the cap is
 * reached: counted only while users waited (an empty line measures demand, not the rate).
 */
export function createLineMeter(tauMs: number = MEASURE_TAU_MS): LineMeter {
  const concerts = new Map<string, ConcertState>();
  const fresh = (): ConcertState => ({
    last: undefined,
    filled: 0,
    waitedMs: 0,
    stepMs: undefined,
    steps: 0,
    stepsMs: 0,
  });
  return {
    observe(concertId, sample) {
      let state = concerts.get(concertId);
      if (!state) {
        if (concerts.size >= CONCERTS_TRACKED) concerts.delete(concerts.keys().next().value!);
        concerts.set(concertId, (state = fresh()));
      }
      const { last } = state;
      state.last = sample.releasedTotal === undefined ? undefined : sample;
      if (last?.releasedTotal === undefined || sample.releasedTotal === undefined) return;
      const released = sample.releasedTotal - last.releasedTotal;
      const dtMs = sample.atMs - last.atMs;
      // Counts that went back belong to a store rebuilt from scratch: a new baseline.
      if (released < 0 || dtMs <= 0) return;
      const keep = Math.exp(-dtMs / tauMs);
      state.steps = state.steps * keep + 1;
      state.stepsMs = state.stepsMs * keep + dtMs;
      state.stepMs = state.stepsMs / state.steps;
      state.filled *= keep;
      state.waitedMs *= keep;
      // Users joined in between are waiting too when the tick leaves some in line.
      if (last.waiting > 0 || sample.waiting > 0) {
        const admitted = sample.heldSlots - last.heldSlots + released;
        state.filled += Math.max(0, admitted - Math.max(0, sample.cap - last.heldSlots));
        state.waitedMs += dtMs;
      }
    },
    measures(concertId) {
      const state = concerts.get(concertId);
      return state
        ? { filled: state.filled, waitedMs: state.waitedMs, stepMs: state.stepMs }
        : { filled: 0, waitedMs: 0, stepMs: undefined };
    },
  };
}
