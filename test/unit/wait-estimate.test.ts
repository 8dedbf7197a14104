// The wait estimate and the measurements behind it, on stepped times: no clock, no store.

import test from "ava";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createLineMeter, estimateWait, fillRate, type LineMeasures } from "../../src/queue/wait-estimate.js";

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
const nothing: LineMeasures = { filled: 0, waitedMs: 0, stepMs: undefined };
const at = (position: number, activeUsers: number) => ({ position, activeUsers, nowMs: 1_000_000 });

test("places the free slots cover go in at the next step", (t) => {
  t.deepEqual(estimateWait(at(30, 70), rule, nothing), { known: true, waitMs: 100, admissionMs: 1_000_100 });
  // Steps measured slower than the interval: half a step to the next one, half an interval to hear of it.
  t.like(estimateWait(at(30, 70), rule, { ...nothing, stepMs: 400 }), { known: true, waitMs: 250 });
});

test("before the line has moved, the prior: cap slots per expected session", (t) => {
  // 100 slots per 20 s: place 60 with 10 free needs 50 slots, 10 s, after the next step.
  t.like(estimateWait(at(60, 90), rule, nothing), { known: true, waitMs: 10_100 });
  // Place 260 needs 250 slots: two and a half sessions.
  t.like(estimateWait(at(260, 90), rule, nothing), { known: true, waitMs: 50_100 });
  // Without a prior there is nothing honest to say beyond the free slots.
  t.deepEqual(estimateWait(at(31, 70), noPrior, nothing), { known: false });
  t.like(estimateWait(at(30, 70), noPrior, nothing), { known: true, waitMs: 100 });
});

test("a per-step admit limit paces even the places the free slots cover, and bounds the rate", (t) => {
  const paced = { ...rule, admitLimit: 10 };
  t.like(estimateWait(at(10, 0), paced, nothing), { known: true, waitMs: 100 });
  // Place 25 needs three steps of ten: the next one and two more.
  t.like(estimateWait(at(25, 0), paced, nothing), { known: true, waitMs: 300 });
  // One a step is slower than 100 slots per 2 s coming back: the schedule sets the pace.
  t.like(estimateWait(at(60, 90), { ...rule, admitLimit: 1, expectedSessionMs: 2000 }, nothing), {
    known: true,
    waitMs: 6000,
  });
});

test("the measured rate replaces the prior as it accumulates", (t) => {
  const priorPerMs = rule.cap / SESSION_MS;
  t.is(fillRate(rule, nothing), priorPerMs);
  // The line seen moving at 4x the prior's rate: over half a session it counts as much as the
  // prior, over ten sessions it all but replaces it.
  const fast = (waitedMs: number): LineMeasures => ({ filled: 4 * priorPerMs * waitedMs, waitedMs, stepMs: 100 });
  t.is(fillRate(rule, fast(SESSION_MS / 2)), 2.5 * priorPerMs);
  t.true(Math.abs(fillRate(rule, fast(10 * SESSION_MS))! / priorPerMs - 4) < 0.2);
  // Without a prior: unknown until 5 % of the cap was filled again, then the measure alone.
  t.is(fillRate(noPrior, { filled: 4, waitedMs: 1000, stepMs: 100 }), undefined);
  t.is(fillRate(noPrior, { filled: 5, waitedMs: 1000, stepMs: 100 }), 5 / 1000);
  // Never slower than every slot coming back by ACTIVE_TOKEN_TTL.
  t.is(fillRate(noPrior, { filled: 5, waitedMs: 1e9, stepMs: 100 }), rule.cap / TTL_MS);
  t.is(fillRate({ ...rule, cap: 0 }, nothing), undefined);
});

/** Feeds ticks every 100 ms from `fromMs` to `toMs`, giving back `perTick` slots each and filling them again. */
function feed(
  meter: ReturnType<typeof createLineMeter>,
  counts: { released: number },
  range: { fromMs: number; toMs: number },
  line: { held: number; waiting: number; perTick: number },
) {
  for (let ms = range.fromMs; ms <= range.toMs; ms += 100) {
    counts.released += line.perTick;
    meter.observe("c", {
      atMs: ms,
      releasedTotal: counts.released,
      heldSlots: line.held,
      waiting: line.waiting,
      cap: 100,
    });
  }
}
const near = (value: number, expected: number, within: number) => Math.abs(value - expected) <= within;

test("the meter counts slots filled again while users wait, by any process", (t) => {
  const meter = createLineMeter(10_000);
  const counts = { released: 0 };
  meter.observe("c", { atMs: 0, releasedTotal: 0, heldSlots: 0, waiting: 0, cap: 100 });
  t.deepEqual(meter.measures("c"), nothing, "a baseline only");
  // A crowd takes every slot at once: those slots were free, which says nothing of the rate.
  meter.observe("c", { atMs: 100, releasedTotal: 0, heldSlots: 100, waiting: 500, cap: 100 });
  t.is(meter.measures("c").filled, 0);
  // Then 2 slots a tick are given back and filled again (by this process or another: the held
  // count stays while the released count grows): 20 a second.
  feed(meter, counts, { fromMs: 200, toMs: 60_000 }, { held: 100, waiting: 400, perTick: 2 });
  const measured = meter.measures("c");
  t.true(near(measured.filled / measured.waitedMs, 0.02, 1e-4), `${measured.filled / measured.waitedMs}`);
  t.true(near(measured.stepMs!, 100, 1e-9));
  t.deepEqual(meter.measures("other"), nothing, "another concert is measured apart");
});

test("the meter leaves out a line that nobody waits in: slots given back then measure demand", (t) => {
  const meter = createLineMeter(10_000);
  const counts = { released: 0 };
  meter.observe("c", { atMs: 0, releasedTotal: 0, heldSlots: 50, waiting: 0, cap: 100 });
  feed(meter, counts, { fromMs: 100, toMs: 10_000 }, { held: 50, waiting: 0, perTick: 1 });
  t.like(meter.measures("c"), { filled: 0, waitedMs: 0 });
});

test("sessions ending in waves: the rate over whole turns of the cap", (t) => {
  // Every 10 s the whole cap pays at once and the next 100 are admitted in the same tick.
  const meter = createLineMeter(30_000);
  let released = 0;
  for (let ms = 0; ms <= 120_000; ms += 100) {
    if (ms > 0 && ms % 10_000 === 0) released += 100;
    meter.observe("c", { atMs: ms, releasedTotal: released, heldSlots: 100, waiting: 1000, cap: 100 });
  }
  const { filled, waitedMs } = meter.measures("c");
  // 100 slots per 10 s, give or take where the last wave falls in the weighting.
  t.true(near(filled / waitedMs, 0.01, 0.003), `${filled / waitedMs}`);
});

test("a tick without counts (the PostgreSQL fallback) or counts that went back start a new baseline", (t) => {
  const meter = createLineMeter(10_000);
  const tick = (atMs: number, releasedTotal: number | undefined) =>
    meter.observe("c", { atMs, releasedTotal, heldSlots: 5, waiting: 3, cap: 5 });
  tick(0, 0);
  tick(1000, 1);
  const once = meter.measures("c");
  t.like(once, { filled: 1, waitedMs: 1000, stepMs: 1000 });
  // Fallback: nothing is counted there, so nothing may be read across the gap.
  tick(2000, undefined);
  tick(30_000, 9);
  t.deepEqual(meter.measures("c"), once);
  // Redis lost its data: the counts restart; the drop is not a negative release.
  tick(31_000, 0);
  t.deepEqual(meter.measures("c"), once);
});
