// The wait a waiting user is told, from what the waiting room knows and what it has measured.
// Known: the admission schedule (cap, tick, per-tick limits), the slots free now, when the slots
// held now were taken, and the concert's expected session (how long an admitted user keeps a
// slot: an operator's prior). Measured: how long the sessions of the slots given back lately
// lasted, how long a step takes, and how long the last whole turn of the cap took, as the
// admission ticks see them. A slot comes back when its holder's session ends, and the step after
// that admits the head of the line into it.

import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";

/** The line as a status read it: the user's 1-based place and the slots held at that moment. */
export interface PlaceInLine {
  position: number;
  activeUsers: number;
  /** Epoch ms of the read. */
  nowMs: number;
}

export type WaitEstimate = { known: true; waitMs: number; admissionMs: number } | { known: false };

/** How much the prior weighs, in sessions seen, as a share of the cap: a few quick first sessions do not overturn it, a turn of the cap does. */
const PRIOR_SHARE = 0.1;
/** Without a prior, sessions seen (as a share of the cap) before a place beyond the free slots is known. */
const NO_PRIOR_SHARE = 0.05;

/**
 * Expected wait of the user at `place`. A place the free slots cover goes in at the next step
 * (at the per-step limits' pace). The n-th place beyond them waits for the n-th slot to come
 * back: the held slots come back oldest first, each a session after it was taken (never later
 * than ACTIVE_TOKEN_TTL allows); a place more than the cap back waits, per turn of the cap, for
 * the session of a user admitted after it joined. The session is the measured one, blended with
 * the prior; without a prior (expected session 0) it is unknown until enough sessions were seen.
 */
export function estimateWait(place: PlaceInLine, rule: AdmissionRule, measured: LineMeasures): WaitEstimate {
  // Steps end as often as measured, at least every ADMISSION_INTERVAL_MS. A status is read at any
  // point between two, so the next ends half that away; it admits whom it found in line when it
  // began, so a user who was not yet there waits for one more (on average a step's own duration
  // more). The user hears of it at the next watch tick, half an interval later. A step overdue
  // (one waiting for a busy database) is expected to take about as long again as it has so far.
  const stepMs = Math.max(rule.intervalMs, measured.stepMs ?? 0);
  const tookMs = Math.min(measured.stepTookMs ?? 0, stepMs);
  const sinceStepMs = measured.lastStepMs === undefined ? 0 : place.nowMs - measured.lastStepMs;
  const nextStepMs = Math.max(stepMs / 2, sinceStepMs - stepMs / 2) + tookMs + rule.intervalMs / 2;
  const known = (waitMs: number): WaitEstimate => ({
    known: true,
    waitMs: Math.round(waitMs),
    admissionMs: place.nowMs + Math.round(waitMs),
  });
  if (place.position <= admissionsThisTick({ active: place.activeUsers }, rule)) return known(nextStepMs);
  const perTick = Math.min(rule.stepLimit, rule.admitLimit ?? Infinity);
  const pacedMs = (Math.ceil(place.position / perTick) - 1) * stepMs;
  const free = rule.cap - place.activeUsers;
  if (place.position <= free) return known(nextStepMs + pacedMs);
  const turns = Math.ceil(place.position / rule.cap) - 1;
  const inTurn = place.position - turns * rule.cap;
  // From a decision to its users hearing of it: as watchers measured it lately, else Redis's
  // apply of the step, and then the next watch tick, on average half an interval later.
  const hearMs = measured.heardMs ?? Math.min(measured.admitLagMs ?? tookMs, tookMs);
  const watchTickMs = measured.heardMs === undefined ? rule.intervalMs / 2 : 0;
  const { turnMs } = measured;
  // A turn shorter than the sessions given back lately was no turn of every slot: slots that turn
  // quickly (users who leave at once) made it while the others are still held.
  if (turnMs !== undefined && !(measured.recentSessionMs !== undefined && measured.recentSessionMs > turnMs)) {
    // A full turn of the cap measured while the line was never empty: the admission that takes a
    // slot comes a turn after the one that took it before, whatever the session, the refill and
    // the hearing added up to; the user then hears of it as the latest admissions' users did.
    const firstMs =
      inTurn <= free ? nextStepMs : slotDecidedMs(inTurn - free, place, measured) + turnMs + hearMs + watchTickMs;
    return known(Math.max(nextStepMs + pacedMs, firstMs + turns * turnMs));
  }
  const sessionMs = expectedSessionMs(rule, measured);
  if (sessionMs === undefined) return { known: false };
  // A slot given back is counted by the next step, on average half a step later, and taken again
  // when Redis applies that step's admissions (the lag measured since the decision): each turn of
  // the cap is a session, counted from that apply, and this refill. The n-th slot held comes back
  // a session after its apply; the user hears of its admission at the next watch tick. Where
  // watchers measured the hearing, sessions count from it (heldSince too).
  const refillMs = stepMs / 2 + hearMs;
  const firstMs =
    inTurn <= free
      ? nextStepMs
      : Math.max(nextStepMs, slotBackMs(inTurn - free, place, rule, measured, sessionMs) + refillMs + watchTickMs);
  return known(Math.max(nextStepMs + pacedMs, firstMs + turns * (sessionMs + refillMs)));
}

/** How long an admitted user keeps a slot: the sessions measured, blended with the prior; undefined when neither says enough. */
export function expectedSessionMs(rule: AdmissionRule, measured: LineMeasures): number | undefined {
  if (rule.cap <= 0) return undefined;
  const priorWeight = rule.expectedSessionMs > 0 ? PRIOR_SHARE * rule.cap * measured.priorKept : 0;
  if (priorWeight === 0 && measured.sessions < Math.max(1, NO_PRIOR_SHARE * rule.cap)) return undefined;
  const sessionMs = (measured.sessionsMs + priorWeight * rule.expectedSessionMs) / (measured.sessions + priorWeight);
  return Math.min(sessionMs, rule.activeTtlMs);
}

/**
 * Ms from now back to (negative) the admission decision that took the n-th slot held now (1-based,
 * oldest first); slots given back since the tick were the oldest.
 */
function slotDecidedMs(n: number, place: PlaceInLine, measured: LineMeasures): number {
  const { heldDecided, heldUpTo } = measured;
  const held = heldUpTo.at(-1) ?? 0;
  const index = Math.min(n + Math.max(0, held - place.activeUsers), held);
  const group = heldUpTo.findIndex((upTo) => upTo >= index);
  return group < 0 ? 0 : heldDecided[group]! - place.nowMs;
}

/** Ms from now until the n-th slot held now comes back (1-based, oldest first). */
function slotBackMs(
  n: number,
  place: PlaceInLine,
  rule: AdmissionRule,
  measured: LineMeasures,
  sessionMs: number,
): number {
  const { heldSince, heldUpTo, unknownAges } = measured;
  const held = heldUpTo.at(-1) ?? 0;
  // Slots held whose taking nobody saw are taken as if the line had moved steadily: one of them
  // comes back every session / their number.
  if (held === 0) return (sessionMs * n) / Math.max(1, place.activeUsers);
  // Slots given back since the tick were the oldest; slots taken since, the newest.
  const index = n + Math.max(0, held - place.activeUsers);
  if (index > held) return sessionMs;
  let [low, high] = [0, heldUpTo.length - 1];
  while (low < high) {
    const middle = (low + high) >> 1;
    if (heldUpTo[middle]! >= index) high = middle;
    else low = middle + 1;
  }
  const takenMs = heldSince[low]!;
  if (low === 0 && unknownAges > 0)
    return Math.max(0, takenMs + (sessionMs * (unknownAges - heldUpTo[0]! + index)) / unknownAges - place.nowMs);
  return Math.max(0, Math.min(takenMs + sessionMs, takenMs + rule.activeTtlMs) - place.nowMs);
}

/** One admission tick of a concert, as the measurement needs it. */
export interface TickSample {
  /** Epoch ms of the tick (the store's clock). */
  atMs: number;
  /** The concert's running count of slots given back (every process); undefined where the store keeps none. */
  releasedTotal: number | undefined;
  /** The time those slots had left until their expiry, in sum (ms). */
  releasedRemainingMs: number | undefined;
  /** Slots held after the tick. */
  heldSlots: number;
  /** Users waiting after the tick. */
  waiting: number;
  /** The concert's cap (MAX_ACTIVE_USERS or its own setting). */
  cap: number;
  /** The concert's ACTIVE_TOKEN_TTL (ms). */
  activeTtlMs: number;
  /** How long the step took (ms). */
  tookMs: number;
  /**
   * How long after their admission decision Redis applied the step's admissions (ms; 0 or unset
   * when it admitted nobody); it stands for other processes' admissions between two ticks too.
   */
  appliedAfterMs?: number;
}

/** What a concert's ticks measured: recent sessions, and when the slots held now were taken. */
export interface LineMeasures {
  /** Sessions seen lately (slots given back), weighted towards the last ones. */
  sessions: number;
  /** Their total length (ms), weighted the same. */
  sessionsMs: number;
  /** The share of the prior's weight left: it wanes as sessions are seen, as they do. */
  priorKept: number;
  /** When the slots held at the last tick were taken, oldest first (epoch ms, in groups). */
  heldSince: readonly number[];
  /** When the admission decisions that took those slots were made (epoch ms, the store's clock). */
  heldDecided: readonly number[];
  /** Slots held up to and including each group of heldSince. */
  heldUpTo: readonly number[];
  /** When the first group is what the first tick found held (taken at unknown times): how many it held then; else 0. */
  unknownAges: number;
  /** Time between this process's admission steps lately; undefined before two. */
  stepMs: number | undefined;
  /** How long those steps took lately; undefined before two. */
  stepTookMs: number | undefined;
  /** How long after their decision Redis applied admissions lately (ticks that admitted); undefined before one. */
  admitLagMs: number | undefined;
  /** When this process's last step for the concert ended (epoch ms, the store's clock); undefined if it left the concert empty (no more steps until a join). */
  lastStepMs: number | undefined;
  /** How long after their decision admitted users lately heard of it (this process's watchers); undefined before any did. */
  heardMs: number | undefined;
  /**
   * How long the last full turn of the cap took, from the decision that took a slot to the one
   * that took it again (ms): the time the last `cap` admissions took, while the line never ran
   * empty; undefined before one.
   */
  turnMs: number | undefined;
  /** The sessions of the last few slots given back (about RECENT_SESSION_SHARE of the cap); undefined before one. */
  recentSessionMs: number | undefined;
}

export const NOTHING_MEASURED: LineMeasures = {
  sessions: 0,
  sessionsMs: 0,
  priorKept: 1,
  heldSince: [],
  heldDecided: [],
  heldUpTo: [],
  unknownAges: 0,
  stepMs: undefined,
  stepTookMs: undefined,
  admitLagMs: undefined,
  lastStepMs: undefined,
  heardMs: undefined,
  turnMs: undefined,
  recentSessionMs: undefined,
};

export interface LineMeter {
  /** Feeds one tick; the first of a concert (or after a gap in the counts) only sets the baseline. */
  observe(concertId: string, sample: TickSample): void;
  measures(concertId: string): LineMeasures;
  /**
   * `users` admitted by the decision at `decisionMs` heard of it at `heardAtMs` (both on the
   * store's clock): their sessions then count from the hearing, and the time it took is what
   * the next admissions are expected to take to reach their users.
   */
  heard(concertId: string, decisionMs: number, heardAtMs: number, users: number): void;
}

/** Time constant of the step time. */
export const STEP_TAU_MS = 30_000;
/** Sessions weigh less by e per this share of the cap given back since: about the last turn of the cap counts. */
const SESSION_MEMORY_SHARE = 0.5;
/** The same for the recent sessions a measured turn is checked against: the last few slots given back. */
const RECENT_SESSION_SHARE = 0.02;
/** Time constant of the time admitted users take to hear of it: it falls quickly once a burst has been served. */
export const HEARD_TAU_MS = 2000;
/** Hearings not yet matched to a tick's admissions are kept this long (the tick that admitted them may not have been observed yet). */
const HEARD_PENDING_MS = 10_000;
/** A hearing belongs to the admissions of a tick whose decision was this close (ms; the decision's time is rounded to ms in two stores). */
const DECISION_MATCH_MS = 5;
/** Groups of held slots kept per concert; beyond it the two closest in time are merged. */
const HELD_GROUPS = 64;
const CONCERTS_TRACKED = 10_000;

interface Group {
  atMs: number;
  slots: number;
  /** How long after the admission decision Redis applied it (ms): these users' expiry counts from the decision. */
  lagMs: number;
  /** Set on the slots a baseline found held: how many there were. */
  unknownAges?: number;
  /** Users of this group heard of as admitted (watch-hub.ts), and the sum of their decision-to-hearing times (ms). */
  heardUsers?: number;
  heardSumMs?: number;
  /** Their hearings' times after atMs, in sum (ms). */
  heardAfterSumMs?: number;
}

/** Admissions up to and including a decision, counted since the baseline. */
interface Admitted {
  decidedMs: number;
  upTo: number;
}

interface Hearing {
  decisionMs: number;
  heardAtMs: number;
  users: number;
}

interface ConcertState {
  last: TickSample | undefined;
  groups: Group[];
  measures: LineMeasures;
  steps: number;
  stepsMs: number;
  tooksMs: number;
  lags: number;
  lagsMs: number;
  hearings: Hearing[];
  heardWeight: number;
  heardSumMs: number;
  heardLastMs: number;
  /** Recent admission decisions, oldest first: enough to reach back a turn of the cap. */
  admits: Admitted[];
  admittedTotal: number;
  /** Admissions counted when the line was last found empty (or the cap changed): a turn starts after it. */
  idleUpTo: number;
  turnCap: number;
  turnMs: number | undefined;
  recentSessions: number;
  recentSessionsMs: number;
}

/**
 * Per process, per concert, from the counts each admission tick reads. Every slot given back
 * lowers the held count and every admission raises it, so the admissions of every process
 * between two ticks are the change in slots held plus the slots given back; they are taken at
 * the tick. Slots given back are taken from the oldest held first. Their sessions are
 * ACTIVE_TOKEN_TTL less the time they had left, which the store sums, less how long after its
 * decision Redis applied their admission: like the held slots' times, a session counts from the
 * tick, so a step slowed by a burst is not counted again in every later turn. Slots a tick finds
 * held beyond those counted (a cap change, a lost step) are taken as applied at their decision.
 */
export function createLineMeter(stepTauMs: number = STEP_TAU_MS): LineMeter {
  const concerts = new Map<string, ConcertState>();
  const fresh = (): ConcertState => ({
    last: undefined,
    groups: [],
    measures: NOTHING_MEASURED,
    steps: 0,
    stepsMs: 0,
    tooksMs: 0,
    lags: 0,
    lagsMs: 0,
    hearings: [],
    heardWeight: 0,
    heardSumMs: 0,
    heardLastMs: 0,
    admits: [],
    admittedTotal: 0,
    idleUpTo: 0,
    turnCap: 0,
    turnMs: undefined,
    recentSessions: 0,
    recentSessionsMs: 0,
  });
  return {
    observe(concertId, sample) {
      let state = concerts.get(concertId);
      if (!state) {
        if (concerts.size >= CONCERTS_TRACKED) concerts.delete(concerts.keys().next().value!);
        concerts.set(concertId, (state = fresh()));
      }
      const { last } = state;
      const counted = sample.releasedTotal !== undefined && sample.releasedRemainingMs !== undefined;
      state.last = counted ? sample : undefined;
      const released = counted && last ? sample.releasedTotal! - last.releasedTotal! : -1;
      const dtMs = last ? sample.atMs - last.atMs : 0;
      // No counts before, or counts that went back (a store rebuilt from scratch): a new baseline,
      // whose held slots count as taken now.
      if (released < 0 || dtMs <= 0) {
        const slots = sample.heldSlots;
        state.groups = slots > 0 ? [{ atMs: sample.atMs, slots, lagMs: 0, unknownAges: slots }] : [];
        [state.admits, state.admittedTotal, state.idleUpTo, state.turnCap] = [[], 0, 0, sample.cap];
        state.measures = { ...state.measures, ...heldOf(state.groups, state), lastStepMs: lastStepOf(sample) };
        return;
      }
      const keep = Math.exp(-dtMs / stepTauMs);
      state.steps = state.steps * keep + 1;
      state.stepsMs = state.stepsMs * keep + dtMs;
      state.tooksMs = state.tooksMs * keep + sample.tookMs;
      if (sample.appliedAfterMs)
        [state.lags, state.lagsMs] = [state.lags * keep + 1, state.lagsMs * keep + sample.appliedAfterMs];
      let { sessions, sessionsMs, priorKept } = state.measures;
      // From the decision to when the session began: the hearing where measured, else Redis's apply.
      const releasedLagMs = takeOldest(state.groups, released);
      if (released > 0) {
        const remainingMs = sample.releasedRemainingMs! - last!.releasedRemainingMs!;
        const meanMs = Math.min(
          Math.max(0, sample.activeTtlMs - remainingMs / released - releasedLagMs / released),
          sample.activeTtlMs,
        );
        const fade = Math.exp(-released / Math.max(1, SESSION_MEMORY_SHARE * sample.cap));
        sessions = sessions * fade + released;
        sessionsMs = sessionsMs * fade + released * meanMs;
        priorKept *= fade;
        const recentFade = Math.exp(-released / Math.max(1, RECENT_SESSION_SHARE * sample.cap));
        state.recentSessions = state.recentSessions * recentFade + released;
        state.recentSessionsMs = state.recentSessionsMs * recentFade + released * meanMs;
      }
      const admitted = sample.heldSlots - last!.heldSlots + released;
      if (admitted > 0) state.groups.push({ atMs: sample.atMs, slots: admitted, lagMs: sample.appliedAfterMs ?? 0 });
      measureTurn(state, sample, Math.max(0, admitted));
      reconcile(state.groups, sample);
      attachHearings(state);
      state.measures = {
        sessions,
        sessionsMs,
        priorKept,
        ...heldOf(state.groups, state),
        stepMs: state.stepsMs / state.steps,
        stepTookMs: state.tooksMs / state.steps,
        admitLagMs: state.lags > 0 ? state.lagsMs / state.lags : undefined,
        lastStepMs: lastStepOf(sample),
        heardMs: heardOf(state),
        turnMs: state.turnMs,
        recentSessionMs: state.recentSessions > 0 ? state.recentSessionsMs / state.recentSessions : undefined,
      };
    },
    measures(concertId) {
      return concerts.get(concertId)?.measures ?? NOTHING_MEASURED;
    },
    heard(concertId, decisionMs, heardAtMs, users) {
      const state = concerts.get(concertId);
      if (!state || users <= 0) return;
      // Each tick's hearing counts alike, the latest most: it says how long it takes now.
      const keep = state.heardWeight > 0 ? Math.exp(-Math.max(0, heardAtMs - state.heardLastMs) / HEARD_TAU_MS) : 0;
      state.heardWeight = state.heardWeight * keep + 1;
      state.heardSumMs = state.heardSumMs * keep + Math.max(0, heardAtMs - decisionMs);
      state.heardLastMs = Math.max(state.heardLastMs, heardAtMs);
      state.hearings.push({ decisionMs, heardAtMs, users });
      attachHearings(state);
      state.measures = { ...state.measures, ...heldOf(state.groups, state), heardMs: heardOf(state) };
    },
  };
}

/** Admission decisions kept per concert; beyond it every other one is dropped (a turn then measures a little short). */
const ADMITS_KEPT = 512;

/** Records a tick's admissions and, where the line stayed full for a whole turn of the cap, how long that turn took. */
function measureTurn(state: ConcertState, sample: TickSample, admitted: number): void {
  // A turn measured across a cap change or an empty line says nothing of the slots' turnover.
  if (sample.cap !== state.turnCap) [state.turnCap, state.idleUpTo] = [sample.cap, state.admittedTotal];
  if (admitted > 0) {
    state.admittedTotal += admitted;
    state.admits.push({ decidedMs: sample.atMs - (sample.appliedAfterMs ?? 0), upTo: state.admittedTotal });
    const from = state.admittedTotal - sample.cap;
    while (state.admits.length > 1 && state.admits[1]!.upTo < from) state.admits.shift();
    if (state.admits.length > ADMITS_KEPT)
      state.admits = state.admits.filter((_, i, all) => i % 2 === 1 || i === all.length - 1);
    const start = state.admits.find((entry) => entry.upTo >= from);
    if (from > state.idleUpTo && start) state.turnMs = state.admits.at(-1)!.decidedMs - start.decidedMs;
  }
  if (sample.waiting === 0) state.idleUpTo = state.admittedTotal;
}

const heardOf = (state: ConcertState) => (state.heardWeight > 0 ? state.heardSumMs / state.heardWeight : undefined);

/**
 * Gives each hearing to the admissions it was of: the first group taken at or after its decision
 * (the tick that observed that step). One whose tick has not been observed yet waits for it.
 */
function attachHearings(state: ConcertState): void {
  state.hearings = state.hearings.filter((hearing) => {
    const group = state.groups.find((candidate) => candidate.atMs >= hearing.decisionMs);
    // The tick that counted a step's admissions knows when Redis applied them after the decision.
    const decidedMs = group && group.atMs - group.lagMs;
    if (!group || decidedMs! < hearing.decisionMs - DECISION_MATCH_MS)
      return state.heardLastMs - hearing.heardAtMs < HEARD_PENDING_MS;
    // Slots a baseline found, another process's admissions, a group already given back: not known here.
    if (group.unknownAges || decidedMs! > hearing.decisionMs + DECISION_MATCH_MS) return false;
    group.heardUsers = (group.heardUsers ?? 0) + hearing.users;
    group.heardSumMs = (group.heardSumMs ?? 0) + hearing.users * Math.max(0, hearing.heardAtMs - hearing.decisionMs);
    group.heardAfterSumMs = (group.heardAfterSumMs ?? 0) + hearing.users * (hearing.heardAtMs - group.atMs);
    return false;
  });
}

const lastStepOf = (sample: TickSample) => (sample.heldSlots + sample.waiting > 0 ? sample.atMs : undefined);

/** Takes `slots` from the oldest groups; returns their lags from decision to Redis, in sum. */
function takeOldest(groups: Group[], slots: number): number {
  let [left, drop, lagMs] = [slots, 0, 0];
  while (left > 0 && drop < groups.length) {
    const group = groups[drop]!;
    const taken = Math.min(left, group.slots);
    group.slots -= taken;
    lagMs += taken * (group.heardUsers ? group.heardSumMs! / group.heardUsers : group.lagMs);
    left -= taken;
    if (group.slots === 0) drop++;
  }
  groups.splice(0, drop);
  return lagMs;
}

/** Keeps the groups' total at the slots held (a cap change, counts off by a lost step) and their number bounded. */
function reconcile(groups: Group[], sample: TickSample): void {
  const total = groups.reduce((sum, group) => sum + group.slots, 0);
  if (total > sample.heldSlots) takeOldest(groups, total - sample.heldSlots);
  else if (total < sample.heldSlots) groups.push({ atMs: sample.atMs, slots: sample.heldSlots - total, lagMs: 0 });
  while (groups.length > HELD_GROUPS) {
    const first = groups[0]!.unknownAges ? 1 : 0;
    let closest = first;
    for (let i = first + 1; i < groups.length - 1; i++)
      if (groups[i + 1]!.atMs - groups[i]!.atMs < groups[closest + 1]!.atMs - groups[closest]!.atMs) closest = i;
    const [a, b] = [groups[closest]!, groups[closest + 1]!];
    const slots = a.slots + b.slots;
    const atMs = (a.atMs * a.slots + b.atMs * b.slots) / slots;
    const heardUsers = (a.heardUsers ?? 0) + (b.heardUsers ?? 0);
    groups.splice(closest, 2, {
      atMs,
      slots,
      lagMs: (a.lagMs * a.slots + b.lagMs * b.slots) / slots,
      ...(heardUsers > 0 && {
        heardUsers,
        heardSumMs: (a.heardSumMs ?? 0) + (b.heardSumMs ?? 0),
        heardAfterSumMs:
          (a.heardAfterSumMs ?? 0) +
          (a.heardUsers ?? 0) * (a.atMs - atMs) +
          (b.heardAfterSumMs ?? 0) +
          (b.heardUsers ?? 0) * (b.atMs - atMs),
      }),
    });
  }
}

/**
 * When the held slots were taken, oldest first: when their users heard of it where a watcher saw
 * that, else when the tick counted them, later by the time hearing takes lately less Redis's apply.
 */
function heldOf(
  groups: readonly Group[],
  state: ConcertState,
): Pick<LineMeasures, "heldSince" | "heldDecided" | "heldUpTo" | "unknownAges"> {
  let upTo = 0;
  const heardMs = heardOf(state);
  return {
    heldSince: groups.map((group) =>
      group.heardUsers
        ? group.atMs + Math.max(0, group.heardAfterSumMs! / group.heardUsers)
        : heardMs === undefined || group.unknownAges
          ? group.atMs
          : group.atMs + Math.max(0, heardMs - group.lagMs),
    ),
    heldDecided: groups.map((group) => group.atMs - group.lagMs),
    heldUpTo: groups.map((group) => (upTo += group.slots)),
    unknownAges: groups[0]?.unknownAges ?? 0,
  };
}
