// The prequeue's order is uniform and ignores the join order. The seeds are fixed (derived from
// the trial number), so the test is deterministic: the threshold is the chi-square quantile at
// p = 0.001, i.e. a correct shuffle would fail for one set of fixed seeds in a thousand; this set
// was seen to pass, and a shuffle with a small bias towards early joiners fails it.

import { createHash } from "node:crypto";
import test from "ava";
import { compareLinePlaces, isSeed, newSeed, prequeueSeq, seedDigest } from "../../src/queue/prequeue-order.js";

const USERS = ["ana", "bo", "cy", "di"];
const TRIALS = 24_000;
/** Chi-square quantiles at p = 0.001: 23 degrees of freedom (24 orders of 4), and 3 (4 places). */
const CRITICAL_23 = 49.728;
const CRITICAL_3 = 16.266;

const trialSeed = (trial: number) => createHash("sha256").update(`prequeue-trial-${trial}`).digest("hex");

/** The users in the order the line gives them: by place, ties by token (here the join order). */
function lineOrder(seed: string, joinOrder: readonly string[], place = prequeueSeq): string[] {
  return joinOrder
    .map((userId, i) => ({ userId, seq: place(seed, userId), token: String(i) }))
    .sort(compareLinePlaces)
    .map((entry) => entry.userId);
}

function chiSquare(counts: Map<string, number>, cells: number, total: number): number {
  const expected = total / cells;
  let sum = 0;
  for (const observed of counts.values()) sum += (observed - expected) ** 2 / expected;
  return sum + (cells - counts.size) * expected;
}

function orders(place: typeof prequeueSeq): { orders: Map<string, number>; firstJoiner: Map<string, number> } {
  const seen = new Map<string, number>();
  const firstJoiner = new Map<string, number>();
  for (let trial = 0; trial < TRIALS; trial++) {
    const order = lineOrder(trialSeed(trial), USERS, place);
    const key = order.join(",");
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const placeOfFirst = String(order.indexOf(USERS[0]!));
    firstJoiner.set(placeOfFirst, (firstJoiner.get(placeOfFirst) ?? 0) + 1);
  }
  return { orders: seen, firstJoiner };
}

test("every order of four members is equally likely, and the first joiner's place is uniform", (t) => {
  const { orders: seen, firstJoiner } = orders(prequeueSeq);
  t.is(seen.size, 24);
  const statistic = chiSquare(seen, 24, TRIALS);
  t.log(`chi-square ${statistic.toFixed(1)}, first joiner ${chiSquare(firstJoiner, 4, TRIALS).toFixed(1)}`);
  t.true(statistic < CRITICAL_23, `chi-square ${statistic.toFixed(1)} over 24 orders`);
  const early = chiSquare(firstJoiner, 4, TRIALS);
  t.true(early < CRITICAL_3, `chi-square ${early.toFixed(1)} over the first joiner's 4 places`);
});

test("the test catches a small bias towards early joiners", (t) => {
  // A plausible bug: a coarse key (4 bits) with ties left in join order.
  const coarse = (seed: string, userId: string) => prequeueSeq(seed, userId) >> 48n;
  const { orders: seen, firstJoiner } = orders(coarse);
  t.log(
    `biased: ${chiSquare(seen, 24, TRIALS).toFixed(1)}, first joiner ${chiSquare(firstJoiner, 4, TRIALS).toFixed(1)}`,
  );
  t.true(chiSquare(seen, 24, TRIALS) > CRITICAL_23);
  t.true(chiSquare(firstJoiner, 4, TRIALS) > CRITICAL_3);
});

test("the order depends on the seed and the members, not on the join order", (t) => {
  const seed = newSeed();
  const members = Array.from({ length: 50 }, (_, i) => `user-${i}`);
  const order = lineOrder(seed, members);
  t.deepEqual(lineOrder(seed, [...members].reverse()), order);
  t.notDeepEqual(lineOrder(newSeed(), members), order, "another seed gives another order");
});

test("places are negative integers a Redis score holds exactly, and the digest is the seed's SHA-256", (t) => {
  const seed = "00".repeat(32);
  t.true(isSeed(seed));
  t.false(isSeed("zz"));
  t.is(seedDigest(seed), createHash("sha256").update(Buffer.alloc(32)).digest("hex"));
  for (let i = 0; i < 1000; i++) {
    const seq = prequeueSeq(newSeed(), `user-${i}`);
    t.true(seq < 0n && seq >= -(2n ** 52n));
    t.is(BigInt(Number(seq)), seq);
  }
  const digest = createHash("sha256").update(Buffer.alloc(32)).update("ana", "utf8").digest();
  t.is(prequeueSeq(seed, "ana"), (digest.readBigUInt64BE(0) >> 12n) - 2n ** 52n);
});
