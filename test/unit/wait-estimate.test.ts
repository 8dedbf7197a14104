// The wait estimate and the measurements behind it, on stepped times: no clock, no store.

import test from "ava";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createLineMeter, estimateWait, releasesToKnow, type LineMeasures } from "../../src/queue/wait-estimate.js";

const TTL_MS = 600_000;
const rule: AdmissionRule = { cap: 100, activeTtlMs: TTL_MS, waitingTtlMs: 60_000, intervalMs: 100, stepLimit: 10_000 };
const nothing: LineMeasures = { sessionMs: undefined, stepMs: undefined, releases: 0 };
const at = (position: number, activeUsers: number) => ({ position, activeUsers, nowMs: 1_000_000 });

test("places the free slots cover go in at the next step; further back is unknown until a slot is given back", (t) => {
  t.deepEqual(estimateWait(at(30, 70), rule, nothing), { known: true, waitMs: 100, admissionMs: 1_000_100 });
  t.deepEqual(estimateWait(at(31, 70), rule, nothing), { known: false });
  t.deepEqual(estimateWait(at(1, 100), rule, nothing), { known: false });
  // Steps measured slower than the interval: half a step to the next one, half an interval to hear of it.
  t.like(estimateWait(at(30, 70), rule, { ...nothing, stepMs: 400 }), { known: true, waitMs: 250 });
});

test("a per-step admit limit paces even the places the free slots cover", (t) => {
  const paced = { ...rule, admitLimit: 10 };
  t.like(estimateWait(at(10, 0), paced, nothing), { known: true, waitMs: 100 });
  // Place 25 needs three steps of ten: the next one and two more.
  t.like(estimateWait(at(25, 0), paced, nothing), { known: true, waitMs: 300 });
});

test("further back, the slots still needed come back at cap per mean time held", (t) => {
  const measured: LineMeasures = { sessionMs: 20_000, stepMs: 100, releases: releasesToKnow(rule.cap) };
  // Slots held 20 s on average (and free half a 100 ms step), 100 of them: place 60 with 10 free needs 50: 10.025 s.
  t.like(estimateWait(at(60, 90), rule, measured), { known: true, waitMs: 10_125 });
  // Place 260 needs 250 slots: two and a half turns of the whole cap.
  t.like(estimateWait(at(260, 90), rule, measured), { known: true, waitMs: 50_225 });
  // A per-step limit slower than the slots coming back sets the pace instead.
  t.like(estimateWait(at(60, 90), { ...rule, admitLimit: 1 }, { ...measured, sessionMs: 2000 }), {
    known: true,
    waitMs: 6000,
  });
  // Until 5 % of the cap came back, the first (quickest) users' time says nothing about the rest.
  t.is(releasesToKnow(rule.cap), 5);
  t.deepEqual(estimateWait(at(60, 90), rule, { ...measured, releases: 4 }), { known: false });
});

/** Feeds one tick every 100 ms from `fromMs` to `toMs`: `held` slots held, `perTick` given back each, every one held `sessionMs`. */
function feed(
  meter: ReturnType<typeof createLineMeter>,
  counts: { total: number; unusedMs: number },
  range: { fromMs: number; toMs: number },
  line: { held: number; perTick: number; sessionMs: number },
) {
  for (let ms = range.fromMs; ms <= range.toMs; ms += 100) {
    counts.total += line.perTick;
    counts.unusedMs += line.perTick * (TTL_MS - line.sessionMs);
    meter.observe("c", { atMs: ms, released: { ...counts }, heldSlots: line.held, activeTtlMs: TTL_MS });
  }
}
const near = (value: number | undefined, expected: number, within: number) =>
  value !== undefined && Math.abs(value - expected) <= within;

test("the meter at a sale's start: nothing until slots come back, then the time the first ones were held", (t) => {
  const meter = createLineMeter(10_000);
  const counts = { total: 0, unusedMs: 0 };
  meter.observe("c", { atMs: 0, released: { ...counts }, heldSlots: 100, activeTtlMs: TTL_MS });
  t.deepEqual(meter.measures("c"), nothing, "a baseline only");
  // Every slot taken at once, none given back for 3 s: nothing to tell, however long.
  feed(meter, counts, { fromMs: 100, toMs: 3000 }, { held: 100, perTick: 0, sessionMs: 0 });
  t.is(meter.measures("c").sessionMs, undefined);
  t.true(near(meter.measures("c").stepMs, 100, 1e-9));
  // Then users pay after 4 s, one slot a tick. The slot time of everyone per slot back still
  // reads the quiet start as "slots never come back"; the slots' own 4 s is the shorter measure.
  feed(meter, counts, { fromMs: 3100, toMs: 3500 }, { held: 100, perTick: 1, sessionMs: 4000 });
  t.true(near(meter.measures("c").sessionMs, 4000, 1e-6));
  t.is(meter.measures("c").releases, 5);
  // Steady at 8 s, 80 slots, one back a tick (Little's law: 80 / 10 a second): both measures agree.
  feed(meter, counts, { fromMs: 3600, toMs: 43_500 }, { held: 80, perTick: 1, sessionMs: 8000 });
  t.true(near(meter.measures("c").sessionMs, 8000, 100), `${meter.measures("c").sessionMs}`);
  t.deepEqual(meter.measures("other"), nothing, "another concert is measured apart");
});

test("the meter when the load eases: slots come back faster than the last ones were held", (t) => {
  const meter = createLineMeter(10_000);
  const counts = { total: 0, unusedMs: 0 };
  meter.observe("c", { atMs: 0, released: { ...counts }, heldSlots: 100, activeTtlMs: TTL_MS });
  // The users coming back were admitted in the crowd and held 12 s, but 100 slots now come back
  // 20 a second: the line moves as if slots were held 5 s, which is what counts for those waiting.
  feed(meter, counts, { fromMs: 100, toMs: 40_000 }, { held: 100, perTick: 2, sessionMs: 12_000 });
  t.true(near(meter.measures("c").sessionMs, 5000, 1), `${meter.measures("c").sessionMs}`);
});

test("the meter counts slots that ran out (the whole TTL held) as held that long", (t) => {
  const meter = createLineMeter(10_000);
  meter.observe("c", { atMs: 0, released: { total: 0, unusedMs: 0 }, heldSlots: 1_000_000, activeTtlMs: TTL_MS });
  // One ran out, one was given back after 2 s.
  meter.observe("c", { atMs: 100, released: { total: 2, unusedMs: TTL_MS - 2000 }, heldSlots: 0, activeTtlMs: TTL_MS });
  t.is(meter.measures("c").sessionMs, (TTL_MS + 2000) / 2);
});

test("a tick without counts (the PostgreSQL fallback) or counts that went back start a new baseline", (t) => {
  const meter = createLineMeter(10_000);
  const tick = (atMs: number, released: { total: number; unusedMs: number } | undefined) =>
    meter.observe("c", { atMs, released, heldSlots: 5, activeTtlMs: TTL_MS });
  tick(0, { total: 0, unusedMs: 0 });
  tick(1000, { total: 1, unusedMs: TTL_MS - 5000 });
  t.deepEqual(meter.measures("c"), { sessionMs: 5000, stepMs: 1000, releases: 1 });
  // Fallback: nothing is counted there, so nothing may be read across the gap.
  tick(2000, undefined);
  tick(30_000, { total: 9, unusedMs: 0 });
  t.deepEqual(meter.measures("c"), { sessionMs: 5000, stepMs: 1000, releases: 1 });
  // Redis lost its data: the counts restart; the drop is not a negative release.
  tick(31_000, { total: 0, unusedMs: 0 });
  t.deepEqual(meter.measures("c"), { sessionMs: 5000, stepMs: 1000, releases: 1 });
});
