// The waiting room's admission rule, in one place. Each tick, per concert, the step first ends
// what is over (ACTIVE past its expiry, WAITING not seen for the waiting TTL), then admits the
// head of the line: as many as `admissionsThisTick` says, fewer if fewer wait. PostgreSQL's
// admission step (pg-admission.ts), whichever store serves, applies that number under a lock of
// the concert; the wait estimate (wait-estimate.ts) counts the free slots and per-tick limits of
// the same rule.

export interface AdmissionRule {
  /** MAX_ACTIVE_USERS: users holding a slot at once, per concert. */
  cap: number;
  /** ACTIVE_TOKEN_TTL: how long an admitted user holds a slot. */
  activeTtlMs: number;
  /** WAITING_TOKEN_TTL: a waiting user not seen (poll or watch) for this long loses the place. */
  waitingTtlMs: number;
  /** ADMISSION_INTERVAL_MS: how often a tick runs. */
  intervalMs: number;
  /** Most tokens one tick admits or ends per concert, so each atomic step stays short. */
  stepLimit: number;
  /** Most users one tick admits per concert, when an operator set one (users_per_tick). */
  admitLimit?: number;
  /**
   * EXPECTED_SESSION_SECONDS: how long an admitted user is expected to keep a slot. Admission
   * ignores it; it is the wait estimate's prior until the line has been seen to move (0: none).
   */
  expectedSessionMs: number;
}

/** A concert's line as a tick sees it, after ending what is over. */
export interface LineState {
  /** Users holding a slot. */
  active: number;
}

/** Most tokens one tick admits or ends per concert. */
export const STEP_LIMIT = 10_000;
/** EXPECTED_SESSION_SECONDS's default: a person picking a seat and paying. */
export const DEFAULT_EXPECTED_SESSION_SECONDS = 120;

export function admissionRule(settings: {
  maxActiveUsers: number;
  activeTtlSeconds: number;
  waitingTtlSeconds: number;
  intervalMs: number;
  expectedSessionSeconds?: number;
}): AdmissionRule {
  return {
    cap: settings.maxActiveUsers,
    activeTtlMs: settings.activeTtlSeconds * 1000,
    waitingTtlMs: settings.waitingTtlSeconds * 1000,
    intervalMs: settings.intervalMs,
    stepLimit: STEP_LIMIT,
    expectedSessionMs: (settings.expectedSessionSeconds ?? DEFAULT_EXPECTED_SESSION_SECONDS) * 1000,
  };
}

/** How many of the head of the line this tick admits: the free slots, within the step and admit limits. */
export function admissionsThisTick(line: LineState, rule: AdmissionRule): number {
  return Math.max(0, Math.min(rule.cap - line.active, rule.stepLimit, rule.admitLimit ?? Infinity));
}
