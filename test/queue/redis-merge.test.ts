// The merge that brings PostgreSQL's view back into Redis after an outage, run directly on the
// shared Redis under this file's own key prefix: one live place per user, an admission that ran
// out in Redis is no place, and a place Redis saw end stays ended.

import test from "ava";
import { randomUUID } from "node:crypto";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const { redis, queue } = redisQueueFixture("redis-merge");

/** A user admitted in Redis (ACTIVE for 300 ms), and the place PostgreSQL gave them later. */
async function admittedThenRejoined(concertId: string) {
  const before = (await queue.join(concertId, "user", `before-${randomUUID()}`)).token;
  // As PostgreSQL's admission step hands it over: ACTIVE for 300 ms.
  const admitted = await queue.apply(concertId, [{ token: before, activeExpireMs: Date.now() + 300 }]);
  if (admitted.moved.length !== 1) throw new Error("expected one admission");
  const later = {
    token: `later-${randomUUID()}`,
    userId: "user",
    seq: "1000",
    state: "WAITING" as const,
    activeExpireMs: 0,
  };
  return { before, later };
}

test("an admission that ran out does not keep the user's place from PostgreSQL out of Redis", async (t) => {
  const concertId = randomUUID();
  const { before, later } = await admittedThenRejoined(concertId);
  await new Promise((resolve) => setTimeout(resolve, 400)); // ACTIVE ran out; no admission step since
  await queue.merge(concertId, "2000", [later]);
  const status = await queue.status(later.token, false);
  t.is(status?.state, "WAITING");
  t.is(status?.position, 1);
  t.is((await queue.status(before, false))?.state, "EXPIRED");
});

test("an admission still in its time wins over another place of the same user", async (t) => {
  const concertId = randomUUID();
  const { before, later } = await admittedThenRejoined(concertId);
  await queue.merge(concertId, "2000", [later]);
  t.is((await queue.status(before, false))?.state, "ACTIVE");
  t.is(await redis.zrank(queue.keys.concert(concertId).waiting, later.token), null, "the later place is not merged");
});

test("a place that Redis saw end (a leave not yet mirrored to PostgreSQL) is not put back by PostgreSQL's older row", async (t) => {
  const concertId = randomUUID();
  const { token, seq } = await queue.join(concertId, "leaver", `leaver-${randomUUID()}`);
  await queue.leave(token);
  // PostgreSQL still has the row as WAITING: its record of the leave failed.
  await queue.merge(concertId, "2000", [
    { token, userId: "leaver", seq: String(seq), state: "WAITING", activeExpireMs: 0 },
  ]);
  t.is((await queue.status(token, false))?.state, "EXPIRED");
  t.is(await redis.zcard(queue.keys.concert(concertId).waiting), 0);
});
