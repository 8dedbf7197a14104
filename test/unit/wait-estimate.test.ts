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
  // Steps measured slower than the interval count as they are.
  t.like(estimateWait(at(30, 70), rule, { ...nothing, stepMs: 400 }), { known: true, waitMs: 400 });
});

test("a per-step admit limit paces even the places the free slots cover", (t) => {
  const paced = { ...rule, admitLimit: 10 };
  t.like(estimateWait(at(10, 0), paced, nothing), { known: true, waitMs: 100 });
  // Place 25 needs three steps of ten: the next one and two more.
  t.like(estimateWait(at(25, 0), paced, nothing), { known: true, waitMs: 300 });
});

test("further back, the slots still needed come back at cap per mean time held", (t) => {
  const measured: LineMeasures = { sessionMs: 20_000, stepMs: 100, releases: releasesToKnow(rule.cap) };
  // Slots held 20 s on average, 100 of them: 5 a second. Place 60 with 10 free needs 50: 10 s.
  t.like(estimateWait(at(60, 90), rule, measured), { known: true, waitMs: 10_100 });
  // Place 260 needs 250 slots: two and a half turns of the whole cap.
  t.like(estimateWait(at(260, 90), rule, measured), { known: true, waitMs: 50_100 });
  // A per-step limit slower than the slots coming back sets the pace instead.
  t.like(estimateWait(at(60, 90), { ...rule, admitLimit: 1 }, { ...measured, sessionMs: 2000 }), {
    known: true,
    waitMs: 6000,
  });
  // Until 5 % of the cap came back, the first (quickest) users' time says nothing about the rest.
  t.is(releasesToKnow(rule.cap), 5);
  t.deepEqual(estimateWait(at(60, 90), rule, { ...measured, releases: 4 }), { known: false });
});

/** A meter fed one tick every 100 ms from `fromMs` to `toMs`, each giving back `perTick(ms)` slots held `heldMs` each. */
function feed(
  meter: ReturnType<typeof createLineMeter>,
  counts: { total: number; unusedMs: number },
  fromMs: number,
  toMs: number,
  perTick: (ms: number) => number,
  heldMs: number,
) {
  for (let ms = fromMs; ms <= toMs; ms += 100) {
    const released = perTick(ms);
    counts.total += released;
    counts.unusedMs += released * (TTL_MS - heldMs);
    meter.observe("c", { atMs: ms, released: { ...counts }, activeTtlMs: TTL_MS });
  }
}

test("the meter: mean time a given-back slot was held, and time between steps, from the ticks' running counts", (t) => {
  const meter = createLineMeter(10_000);
  const counts = { total: 0, unusedMs: 0 };
  meter.observe("c", { atMs: 0, released: { ...counts }, activeTtlMs: TTL_MS });
  t.deepEqual(meter.measures("c"), nothing, "a baseline only");
  // A sale just opened: slots held, none given back for 3 s. Nothing to tell yet, however long.
  feed(meter, counts, 100, 3000, () => 0, 0);
  t.is(meter.measures("c").sessionMs, undefined);
  t.true(Math.abs(meter.measures("c").stepMs! - 100) < 1e-9);
  // Then the users pay after 4 s each, one slot a tick: the mean is 4 s at once, not diluted by the wait before.
  feed(meter, counts, 3100, 3500, () => 1, 4000);
  t.true(Math.abs(meter.measures("c").sessionMs! - 4000) < 1e-6);
  t.is(meter.measures("c").releases, 5);
  // They slow down to 8 s: within a few time constants the measure follows.
  feed(meter, counts, 3600, 43_500, () => 1, 8000);
  t.true(Math.abs(meter.measures("c").sessionMs! - 8000) < 100, `${meter.measures("c").sessionMs}`);
  // Slots that ran out (the whole TTL held) count as held that long.
  const expiries = createLineMeter(10_000);
  expiries.observe("c", { atMs: 0, released: { total: 0, unusedMs: 0 }, activeTtlMs: TTL_MS });
  expiries.observe("c", { atMs: 100, released: { total: 2, unusedMs: TTL_MS - 2000 }, activeTtlMs: TTL_MS });
  t.is(expiries.measures("c").sessionMs, (TTL_MS + 2000) / 2);
  t.deepEqual(meter.measures("other"), nothing, "another concert is measured apart");
});

test("a tick without counts (the PostgreSQL fallback) or counts that went back start a new baseline", (t) => {
  const meter = createLineMeter(10_000);
  meter.observe("c", { atMs: 0, released: { total: 0, unusedMs: 0 }, activeTtlMs: TTL_MS });
  meter.observe("c", { atMs: 1000, released: { total: 1, unusedMs: TTL_MS - 5000 }, activeTtlMs: TTL_MS });
  t.is(meter.measures("c").sessionMs, 5000);
  // Fallback: nothing is counted there, so nothing may be read across the gap.
  meter.observe("c", { atMs: 2000, released: undefined, activeTtlMs: TTL_MS });
  meter.observe("c", { atMs: 30_000, released: { total: 9, unusedMs: 0 }, activeTtlMs: TTL_MS });
  t.deepEqual(meter.measures("c"), { sessionMs: 5000, stepMs: 1000, releases: 1 });
  // Redis lost its data: the counts restart; the drop is not a negative release.
  meter.observe("c", { atMs: 31_000, released: { total: 0, unusedMs: 0 }, activeTtlMs: TTL_MS });
  t.deepEqual(meter.measures("c"), { sessionMs: 5000, stepMs: 1000, releases: 1 });
});
