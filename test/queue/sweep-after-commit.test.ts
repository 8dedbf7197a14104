// The admission step's sweep drops nothing in Redis before PostgreSQL has recorded the ends: a
// step whose transaction fails after the sweep (here: the sweep alone, nothing recorded) leaves
// the swept users in Redis, and the next step records their ends, drops them after its commit
// and counts the slot given back. On the shared Redis under this file's own key prefix.

import { randomUUID } from "node:crypto";
import test from "ava";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createJoinCommitter, joinRowOf } from "../../src/queue/join-committer.js";
import { createEndCommitter } from "../../src/queue/end-committer.js";
import { admit, LEAVE_IN_FLIGHT_S } from "../../src/queue/pg-admission.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const { redis, queue } = redisQueueFixture("sweep-after-commit");

const RULE: AdmissionRule = {
  cap: 1,
  activeTtlMs: 600_000,
  waitingTtlMs: 600_000,
  intervalMs: 1000,
  stepLimit: 100,
  expectedSessionMs: 0,
};
let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("sweep_after_commit");
});

test.after.always(async () => {
  await fixture?.stop();
});

/** Joins the users in order, each recorded in PostgreSQL as its join is; returns their tokens. */
async function joinRecorded(concertId: string, userIds: string[]): Promise<string[]> {
  const committer = createJoinCommitter({ db: fixture.db, maxRows: 1, maxDelayMs: 0 });
  const tokens: string[] = [];
  for (const userId of userIds) {
    const reply = await queue.join(concertId, userId, randomUUID().replaceAll("-", ""));
    await committer.commit(joinRowOf(concertId, userId, reply));
    tokens.push(reply.token);
  }
  return tokens;
}

/** One admission step as the loop runs it: the record's decision, then Redis's half. */
function stepper(concertId: string, rule: AdmissionRule = RULE) {
  return async () => {
    const done = await admit(fixture.db, concertId, rule, queue);
    await queue.apply(concertId, done.active, [...done.expired, ...done.abandoned]);
    return done;
  };
}

test("a swept user stays in Redis until the step that records the end has committed", async (t) => {
  const { db } = fixture;
  const concertId = randomUUID();
  const [holder, gone, next] = await joinRecorded(concertId, ["holder", "gone", "next"]);
  const step = stepper(concertId);
  t.deepEqual((await step()).admitted, [holder]);
  const keys = queue.keys.concert(concertId);
  // The holder's slot runs out and "gone" stops polling.
  await redis.zadd(keys.active, 1, holder!);
  await redis.zadd(keys.seen, 1, gone!);
  const stateOf = async (token: string) =>
    (await db.query<{ state: string }>("select state from queue_entry where token = $1", [token]))[0]!.state;

  const swept = await queue.sweep(concertId, RULE); // and the step's transaction fails
  t.deepEqual([swept.expired, swept.abandoned], [[holder], [gone]]);
  t.is(await redis.zscore(keys.waiting, gone!), "2", "still in Redis's line");
  t.deepEqual([await stateOf(holder!), await stateOf(gone!)], ["ACTIVE", "WAITING"]);

  const released = Number((await redis.hget(keys.rate, "f")) ?? 0);
  const done = await step();
  t.deepEqual([done.expired, done.abandoned, done.admitted], [[holder], [gone], [next]]);
  t.deepEqual([await stateOf(holder!), await stateOf(gone!)], ["EXPIRED", "EXPIRED"]);
  t.is(await redis.zscore(keys.waiting, gone!), null, "dropped after the commit");
  t.is((await queue.status(gone!, false))?.state, "EXPIRED");
  t.is(Number(await redis.hget(keys.rate, "f")) - released, 1, "the holder's slot counted as given back");
});

test("a slot that runs out between the sweep and the record's count is left to the next step", async (t) => {
  // The record frees only what expired by the sweep's time: those are what the APPLY after the
  // commit drops from Redis's active set. Freeing a later expiry too (the record's own clock, a
  // moment later) admitted the next user beside an expired token Redis still held: the active
  // set stood above the cap until the next step.
  const { db } = fixture;
  const concertId = randomUUID();
  const [holder, next] = await joinRecorded(concertId, ["holder", "next"]);
  const shortRule: AdmissionRule = { ...RULE, activeTtlMs: 1000 };
  const first = await admit(db, concertId, shortRule, queue);
  await queue.apply(concertId, first.active, []);
  t.deepEqual(first.admitted, [holder]);
  const [expiry] = first.active.map((a) => a.activeExpireMs);
  // A sweep that answers before the holder's slot runs out, then reaches PostgreSQL after it.
  const slowLine = {
    sweep: async (...args: Parameters<typeof queue.sweep>) => {
      const swept = await queue.sweep(...args);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiry! - Date.now()) + 200));
      return swept;
    },
    head: queue.head.bind(queue),
  };
  const second = await admit(db, concertId, shortRule, slowLine);
  await queue.apply(concertId, second.active, [...second.expired, ...second.abandoned]);
  const keys = queue.keys.concert(concertId);
  t.true((await redis.zcard(keys.active)) <= shortRule.cap, "Redis's active set within the cap");
  if (second.expired.length === 0) t.deepEqual(second.admitted, [], "nobody admitted beside the unswept slot");
  const third = await admit(db, concertId, shortRule, queue);
  await queue.apply(concertId, third.active, [...third.expired, ...third.abandoned]);
  t.deepEqual([...second.admitted, ...third.admitted], [next], "the next step frees the slot and admits");
});

test("a slot whose leave the record has and Redis not yet is left to the next step", async (t) => {
  // A leave writes PostgreSQL first, then Redis. A step between the two writes counted the slot
  // free in the record and admitted the next user beside the leaver Redis still held: the active
  // set stood above the cap until the leave reached Redis (the cluster test's observer saw it
  // under load).
  const concertId = randomUUID();
  const [holder, next] = await joinRecorded(concertId, ["holder", "next"]);
  const step = stepper(concertId);
  t.deepEqual((await step()).admitted, [holder]);
  const ends = createEndCommitter(fixture.db);
  await ends.commit(holder!); // the leave's first write
  const second = await step();
  t.true((await redis.zcard(queue.keys.concert(concertId).active)) <= RULE.cap, "Redis's active set within the cap");
  t.deepEqual(second.admitted, [], "nobody admitted beside the leaver Redis still holds");
  await queue.leave(holder!); // its second
  t.deepEqual((await step()).admitted, [next], "the next step fills the slot");
  await ends.drain();
});

test("a leave that never reached Redis stops holding its slot once it is no longer recent", async (t) => {
  // Its process died between the two writes: the record decides, as before.
  const concertId = randomUUID();
  const [holder, next] = await joinRecorded(concertId, ["holder", "next"]);
  const step = stepper(concertId);
  t.deepEqual((await step()).admitted, [holder]);
  await fixture.db.query(
    "update queue_entry set state = 'EXPIRED', ended_at = now() - make_interval(secs => $2) where token = $1",
    [holder, LEAVE_IN_FLIGHT_S + 1],
  );
  t.deepEqual((await step()).admitted, [next]);
});
