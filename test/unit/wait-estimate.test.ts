// The wait estimate and the measurements behind it, on stepped times: no clock, no store. The
// last tests run a simulated waiting room (seeded random sessions) and hold the estimates it gave
// against the waits its users then had.

import test from "ava";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import {
  createLineMeter,
  estimateWait,
  expectedSessionMs,
  NOTHING_MEASURED,
  type LineMeter,
  type TickSample,
} from "../../src/queue/wait-estimate.js";

const TTL_MS = 600_000;
const SESSION_MS = 20_000;
const rule: AdmissionRule = {
  cap: 100,
  activeTtlMs: TTL_MS,
  waitingTtlMs: 60_000,
  intervalMs: 100,
  stepLimit: 10_000,
  expectedSessionMs: SESSION_MS,
};
const noPrior: AdmissionRule = { ...rule, expectedSessionMs: 0 };
const NOW = 1_000_000;
const at = (position: number, activeUsers: number, nowMs = NOW) => ({ position, activeUsers, nowMs });
const waitOf = (estimate: ReturnType<typeof estimateWait>) => (estimate.known ? estimate.waitMs : NaN);

/** A tick of concert "c" with cap 100; counts default to a line where nothing was given back. */
function sample(fields: Partial<TickSample> & { atMs: number; heldSlots: number }): TickSample {
  return {
    releasedTotal: 0,
    releasedRemainingMs: 0,
    waiting: 1000,
    cap: 100,
    activeTtlMs: TTL_MS,
    tookMs: 0,
    ...fields,
  };
}

test("places the free slots cover go in at the next step", (t) => {
  t.deepEqual(estimateWait(at(30, 70), rule, NOTHING_MEASURED), { known: true, waitMs: 100, admissionMs: NOW + 100 });
  // Steps measured slower than the interval: half a step to the next one, half an interval to hear of it.
  t.like(estimateWait(at(30, 70), rule, { ...NOTHING_MEASURED, stepMs: 400 }), { known: true, waitMs: 250 });
  // Steps that take long: a user not yet in line when one began waits for the next.
  t.like(estimateWait(at(30, 70), rule, { ...NOTHING_MEASURED, stepMs: 1000, stepTookMs: 800 }), {
    known: true,
    waitMs: 500 + 800 + 50,
  });
  // A step overdue is expected to take about as long again as it has so far.
  const overdue = { ...NOTHING_MEASURED, stepMs: 100, lastStepMs: NOW - 3000 };
  t.like(estimateWait(at(30, 70), rule, overdue), { known: true, waitMs: 3000 });
});

test("a per-step admit limit paces even the places the free slots cover", (t) => {
  const paced = { ...rule, admitLimit: 10 };
  t.is(waitOf(estimateWait(at(10, 0), paced, NOTHING_MEASURED)), 100);
  // Place 25 needs three steps of ten: the next one and two more.
  t.is(waitOf(estimateWait(at(25, 0), paced, NOTHING_MEASURED)), 300);
  // One a step is slower than the slots coming back: the schedule sets the pace.
  t.is(waitOf(estimateWait(at(60, 90), { ...paced, admitLimit: 1, expectedSessionMs: 2000 }, NOTHING_MEASURED)), 6000);
});

test("held slots come back oldest first, a session after they were taken", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 0, waiting: 0 }));
  // 60 taken at 1 s, 40 more at 5 s; nothing given back yet, so the prior (20 s) holds.
  meter.observe("c", sample({ atMs: 1000, heldSlots: 60 }));
  meter.observe("c", sample({ atMs: 5000, heldSlots: 100 }));
  const measured = { ...meter.measures("c"), stepMs: 100 };
  t.deepEqual(
    [measured.heldSince, measured.heldUpTo],
    [
      [1000, 5000],
      [60, 100],
    ],
  );
  const wait = (position: number) => waitOf(estimateWait(at(position, 100, 5000), rule, measured));
  // Place 1 to 60: at 21 s, when the first 60 come back; then the step after it (100 ms).
  t.is(wait(1), 16_100);
  t.is(wait(60), 16_100);
  t.is(wait(61), 20_100);
  // Place 160: the slot that place 60 takes at 21 s comes back a session (and half a step) later.
  t.is(wait(160), 16_100 + 20_050);
  // Two slots given back since the tick (the status sees 98 held) were the oldest: place 61,
  // beyond those 2 free slots, waits for the 61st of the slots the tick saw held.
  t.is(waitOf(estimateWait(at(61, 98, 5000), rule, measured)), 20_100);
  // A slot comes back, the next step counts it (half a step later, 1 s steps) and Redis applies the
  // admission 100 ms after the decision (not the whole 300 ms step); then the watch tick (50 ms).
  const slow = { ...measured, stepMs: 1000, stepTookMs: 300, admitLagMs: 100 };
  t.is(waitOf(estimateWait(at(1, 100, 5000), rule, slow)), 16_000 + 500 + 100 + 50);
  t.is(waitOf(estimateWait(at(101, 100, 5000), rule, slow)), 16_650 + 20_000 + 600);
  // Never later than ACTIVE_TOKEN_TTL allows.
  const longPrior = { ...rule, expectedSessionMs: 2 * TTL_MS };
  t.is(waitOf(estimateWait(at(1, 100, 5000), longPrior, measured)), 1000 + TTL_MS - 5000 + 100);
});

test("slots a first tick found held were taken at unknown times: as if the line had moved steadily", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 100 }));
  const measured = meter.measures("c");
  t.is(measured.unknownAges, 100);
  // One of the 100 comes back every 200 ms (a 20 s session).
  t.is(waitOf(estimateWait(at(50, 100, 0), rule, measured)), 10_100);
  t.is(waitOf(estimateWait(at(100, 100, 0), rule, measured)), 20_100);
  // Nothing measured at all: the same, on the slots the status saw held.
  t.is(waitOf(estimateWait(at(50, 100, 0), rule, NOTHING_MEASURED)), 10_100);
});

test("the sessions measured replace the prior as they accumulate", (t) => {
  t.is(expectedSessionMs(rule, NOTHING_MEASURED), SESSION_MS);
  const meter = createLineMeter();
  let released = 0;
  let remainingMs = 0;
  meter.observe("c", sample({ atMs: 0, heldSlots: 100 }));
  // Every second 25 slots are given back after 4 s sessions (they had TTL − 4 s left) and taken again.
  for (let s = 1; s <= 40; s++) {
    released += 25;
    remainingMs += 25 * (TTL_MS - 4000);
    meter.observe(
      "c",
      sample({ atMs: s * 1000, heldSlots: 100, releasedTotal: released, releasedRemainingMs: remainingMs }),
    );
    if (s === 1) {
      // 25 sessions seen against a prior worth 10, which waned as they were seen (by e^-0.5).
      const prior = 10 * Math.exp(-0.5);
      const expected = (25 * 4000 + prior * SESSION_MS) / (25 + prior);
      t.true(Math.abs(expectedSessionMs(rule, meter.measures("c"))! - expected) < 1e-6);
    }
  }
  t.true(Math.abs(expectedSessionMs(rule, meter.measures("c"))! - 4000) < 10);
  // Without a prior: unknown until 5 % of the cap was seen, then the sessions alone.
  const one = createLineMeter();
  one.observe("c", sample({ atMs: 0, heldSlots: 100 }));
  one.observe("c", sample({ atMs: 100, heldSlots: 100, releasedTotal: 4, releasedRemainingMs: 4 * (TTL_MS - 3000) }));
  t.is(expectedSessionMs(noPrior, one.measures("c")), undefined);
  t.false(estimateWait(at(1, 100), noPrior, one.measures("c")).known);
  one.observe("c", sample({ atMs: 200, heldSlots: 100, releasedTotal: 10, releasedRemainingMs: 10 * (TTL_MS - 3000) }));
  t.is(expectedSessionMs(noPrior, one.measures("c")), 3000);
  t.is(expectedSessionMs({ ...rule, cap: 0 }, NOTHING_MEASURED), undefined);
});

test("a session counts from when Redis applied its admission, not from the decision its expiry counts from", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 0 }));
  // Decided at 8 s, applied by Redis at 10 s (the step ran 2.5 s in all): users learn of it at 10 s.
  meter.observe("c", sample({ atMs: 10_000, heldSlots: 100, tookMs: 2500, appliedAfterMs: 2000 }));
  // Decided and applied at 11 s.
  meter.observe("c", sample({ atMs: 11_000, heldSlots: 200, tookMs: 100, appliedAfterMs: 0 }));
  // At 13 s the first 100 and half the next give their slots back; each had TTL less (13 s - decision) left.
  const remainingMs = 100 * (TTL_MS - 5000) + 50 * (TTL_MS - 2000);
  meter.observe("c", sample({ atMs: 13_000, heldSlots: 50, releasedTotal: 150, releasedRemainingMs: remainingMs }));
  const measured = meter.measures("c");
  // Sessions from the ticks: 100 of 3 s and 50 of 2 s.
  const expected = (100 * 3000 + 50 * 2000) / 150;
  t.true(
    Math.abs(measured.sessionsMs / measured.sessions - expected) < 1e-6,
    `${measured.sessionsMs / measured.sessions}`,
  );
});

test("where watchers heard of an admission, its sessions count from the hearing, and the next ones are expected to take as long to hear", (t) => {
  const meters = [createLineMeter(), createLineMeter()];
  for (const meter of meters) {
    meter.observe("c", sample({ atMs: 0, heldSlots: 0 }));
    // Decided at 9.8 s, applied by Redis at 10 s.
    meter.observe("c", sample({ atMs: 10_000, heldSlots: 100, tookMs: 500, appliedAfterMs: 200 }));
  }
  const [watched, unwatched] = meters as [LineMeter, LineMeter];
  // A hearing of another decision (another process's step) is not these users'.
  watched.heard("c", 9_000, 11_000, 40);
  // The watchers of the 100 heard of it at 12 s, 2.2 s after the decision (a burst held the event loop).
  watched.heard("c", 9_800, 12_000, 100);
  t.is(watched.measures("c").heldSince[0], 12_000, "the slots count as taken when their users heard");
  t.is(unwatched.measures("c").heldSince[0], 10_000);
  // All 100 give their slots back at 15 s: 5.2 s after the decision.
  const remainingMs = 100 * (TTL_MS - 5200);
  for (const meter of meters)
    meter.observe("c", sample({ atMs: 15_000, heldSlots: 0, releasedTotal: 100, releasedRemainingMs: remainingMs }));
  const sessionOf = (meter: LineMeter) => meter.measures("c").sessionsMs / meter.measures("c").sessions;
  t.true(Math.abs(sessionOf(watched) - 3000) < 1e-6, `${sessionOf(watched)}`);
  t.true(Math.abs(sessionOf(unwatched) - 5000) < 1e-6, `${sessionOf(unwatched)}`);
  // The time to hear is the latest hearings': the next turn of the cap is expected to take as long.
  const heardMs = watched.measures("c").heardMs!;
  t.true(heardMs > 2000 && heardMs <= 2200, `${heardMs}`);
  // Each turn of the cap beyond the first: a session, then the step that refills the slot, then the hearing.
  const measured = watched.measures("c");
  const turnMs =
    waitOf(estimateWait(at(250, 100, 15_100), noPrior, measured)) -
    waitOf(estimateWait(at(150, 100, 15_100), noPrior, measured));
  const expected = sessionOf(watched) + Math.max(rule.intervalMs, measured.stepMs!) / 2 + heardMs;
  t.true(Math.abs(turnMs - expected) <= 1, `${turnMs} against ${expected}`);
});

test("a turn of the cap is measured where the line never ran empty: the time the last cap admissions took", (t) => {
  const waves = (firstWaiting: number) => {
    const meter = createLineMeter();
    let [released, remainingMs] = [0, 0];
    meter.observe("c", sample({ atMs: 0, heldSlots: 0 }));
    // All 100 slots taken at 100 ms, then given back after 2.5 s sessions and taken again every 3 s.
    meter.observe("c", sample({ atMs: 100, heldSlots: 100, waiting: firstWaiting }));
    const turns: (number | undefined)[] = [];
    for (let wave = 1; wave <= 3; wave++) {
      released += 100;
      remainingMs += 100 * (TTL_MS - 2500);
      const at = 100 + wave * 3000;
      meter.observe(
        "c",
        sample({ atMs: at, heldSlots: 100, releasedTotal: released, releasedRemainingMs: remainingMs }),
      );
      turns.push(meter.measures("c").turnMs);
    }
    return { turns, measured: meter.measures("c") };
  };
  const full = waves(1000);
  t.deepEqual(full.turns, [3000, 3000, 3000]);
  t.is(full.measured.recentSessionMs, 2500);
  t.deepEqual(full.measured.heldDecided, [9100]);
  // The first 100 went into an empty line (the line ran out): they measure arrivals, not a turn.
  t.deepEqual(waves(0).turns, [undefined, 3000, 3000]);
});

test("with a measured turn, the slot a place waits for comes back a turn after the decision that took it", (t) => {
  const measured = {
    ...NOTHING_MEASURED,
    heldSince: [NOW - 800],
    heldDecided: [NOW - 1000],
    heldUpTo: [100],
    turnMs: 3000,
    heardMs: 200,
    recentSessionMs: 2500,
  };
  // Taken 1 s ago, taken again 2 s from now, heard of 200 ms later; a cap further back, a turn more.
  t.is(waitOf(estimateWait(at(1, 100), rule, measured)), 2200);
  t.is(waitOf(estimateWait(at(101, 100), rule, measured)), 5200);
  // A turn shorter than the sessions given back lately was no turn of every slot: the sessions decide.
  const shorter = { ...measured, recentSessionMs: 4000 };
  t.is(
    waitOf(estimateWait(at(101, 100), rule, shorter)),
    waitOf(estimateWait(at(101, 100), rule, { ...shorter, turnMs: undefined })),
  );
  t.not(waitOf(estimateWait(at(101, 100), rule, shorter)), 5200);
});

test("counts that went back or stopped (a rebuilt store, the PostgreSQL fallback) start a new baseline", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 10 }));
  meter.observe(
    "c",
    sample({ atMs: 1000, heldSlots: 10, releasedTotal: 10, releasedRemainingMs: 10 * (TTL_MS - 5000) }),
  );
  const once = meter.measures("c");
  t.is(once.sessions, 10);
  meter.observe("c", sample({ atMs: 2000, heldSlots: 10, releasedTotal: undefined, releasedRemainingMs: undefined }));
  meter.observe("c", sample({ atMs: 30_000, heldSlots: 10, releasedTotal: 90, releasedRemainingMs: 0 }));
  meter.observe("c", sample({ atMs: 31_000, heldSlots: 10, releasedTotal: 0, releasedRemainingMs: 0 }));
  t.like(meter.measures("c"), { sessions: 10, sessionsMs: once.sessionsMs, unknownAges: 10 });
  t.deepEqual(meter.measures("other"), NOTHING_MEASURED, "another concert is measured apart");
});

test("a concert left empty has no step overdue", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 0, waiting: 0 }));
  t.is(meter.measures("c").lastStepMs, undefined);
  meter.observe("c", sample({ atMs: 100, heldSlots: 1, waiting: 0 }));
  t.is(meter.measures("c").lastStepMs, 100);
});

test("held slots are kept in a bounded number of groups, oldest first", (t) => {
  const meter = createLineMeter();
  meter.observe("c", sample({ atMs: 0, heldSlots: 0 }));
  for (let i = 1; i <= 100; i++) meter.observe("c", sample({ atMs: i * 100, heldSlots: i }));
  const { heldSince, heldUpTo } = meter.measures("c");
  t.true(heldSince.length <= 64);
  t.is(heldUpTo.at(-1), 100);
  t.deepEqual(
    [...heldSince].sort((a, b) => a - b),
    heldSince,
  );
  t.true(heldSince[0]! < 200);
});

/** mulberry32: the simulations draw the same sessions every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Shape {
  users: number;
  cap: number;
  expectedSessionMs: number;
  /** When user i joins (ms). */
  joinAtMs: (i: number) => number;
  /** How long an admitted user keeps the slot, from a uniform draw. */
  sessionMs: (draw: number) => number;
}

/**
 * Runs a waiting room on a 100 ms tick: slots come back when sessions end, the head of the line
 * takes them at the next tick. Each tick feeds the meter, then every tenth waiting user is told
 * an estimate; once admitted, each estimate is held against the wait that user had. Returns the
 * median and 90th percentile of |estimate − actual| / actual for waits of 2 s or more.
 */
function simulate(shape: Shape, seed = 1): { median: number; p90: number; answers: number } {
  const draw = random(seed);
  const stepRule: AdmissionRule = { ...rule, cap: shape.cap, expectedSessionMs: shape.expectedSessionMs };
  const meter: LineMeter = createLineMeter();
  const line: number[] = [];
  const held: { endMs: number; admittedMs: number }[] = [];
  const told: { user: number; atMs: number; waitMs: number }[] = [];
  const admittedAt = new Map<number, number>();
  let [joined, released, remainingMs] = [0, 0, 0];
  for (let nowMs = 0; admittedAt.size < shape.users; nowMs += rule.intervalMs) {
    while (joined < shape.users && shape.joinAtMs(joined) <= nowMs) line.push(joined++);
    for (let i = held.length - 1; i >= 0; i--) {
      if (held[i]!.endMs > nowMs) continue;
      released++;
      remainingMs += held[i]!.admittedMs + TTL_MS - held[i]!.endMs;
      held.splice(i, 1);
    }
    for (const user of line.splice(0, Math.max(0, shape.cap - held.length))) {
      admittedAt.set(user, nowMs);
      held.push({ admittedMs: nowMs, endMs: nowMs + shape.sessionMs(draw()) });
    }
    const tick = { atMs: nowMs, releasedTotal: released, releasedRemainingMs: remainingMs, waiting: line.length };
    meter.observe("c", { ...tick, heldSlots: held.length, cap: shape.cap, activeTtlMs: TTL_MS, tookMs: 0 });
    const measured = meter.measures("c");
    for (let position = 1; position <= line.length; position += 10) {
      const estimate = estimateWait({ position, activeUsers: held.length, nowMs }, stepRule, measured);
      if (estimate.known) told.push({ user: line[position - 1]!, atMs: nowMs, waitMs: estimate.waitMs });
    }
  }
  const errors = told
    .map(({ user, atMs, waitMs }) => ({ actual: admittedAt.get(user)! - atMs + rule.intervalMs / 2, waitMs }))
    .filter(({ actual }) => actual >= 2000)
    .map(({ actual, waitMs }) => Math.abs(waitMs - actual) / actual)
    .sort((a, b) => a - b);
  const quantile = (q: number) => errors[Math.floor(q * (errors.length - 1))]!;
  return { median: quantile(0.5), p90: quantile(0.9), answers: errors.length };
}

// Each shape's median error over its users' answers must stay within 25 %.
const shapes: [string, Shape][] = [
  [
    "a burst on a cap that turns in waves of short sessions, the prior three times too long",
    {
      users: 5000,
      cap: 1000,
      expectedSessionMs: 9000,
      joinAtMs: (i) => (i * 1000) / 5000,
      sessionMs: (u) => 2000 + 2000 * u,
    },
  ],
  [
    "arrivals spread over a minute, sessions of any length up to four times the mean",
    {
      users: 3000,
      cap: 200,
      expectedSessionMs: 5000,
      joinAtMs: (i) => (i * 60_000) / 3000,
      sessionMs: (u) => -5000 * Math.log(1 - u * 0.98),
    },
  ],
  [
    "long sessions (a minute or two) with the default prior of two minutes",
    {
      users: 2000,
      cap: 200,
      expectedSessionMs: 120_000,
      joinAtMs: (i) => (i * 30_000) / 2000,
      sessionMs: (u) => 60_000 + 60_000 * u,
    },
  ],
  [
    "a sixth leave at once, the rest keep their slot a minute or so",
    {
      users: 3000,
      cap: 500,
      expectedSessionMs: 60_000,
      joinAtMs: (i) => (i * 5000) / 3000,
      sessionMs: (u) => (u < 0.15 ? 500 + 5000 * u : 30_000 + 40_000 * u),
    },
  ],
  [
    "without a prior, unknown until sessions were seen, then near the waits",
    {
      users: 3000,
      cap: 500,
      expectedSessionMs: 0,
      joinAtMs: (i) => (i * 2000) / 3000,
      sessionMs: (u) => 3000 + 2000 * u,
    },
  ],
];
for (const [title, shape] of shapes)
  test(`simulated: ${title}`, (t) => {
    const result = simulate(shape);
    t.true(result.median <= 0.25, JSON.stringify(result));
  });
