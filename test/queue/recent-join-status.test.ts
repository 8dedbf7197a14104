// A WatchQueue opened right after its join starts from the join's answer (redis-queue.ts
// recentJoinStatus), on the shared Redis under this file's own key prefix: once per join, and
// never for a token this process has since seen admitted or leave.

import test from "ava";
import { randomUUID } from "node:crypto";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const { queue } = redisQueueFixture("recent-join-status");

const freshToken = () => randomUUID().replaceAll("-", "");

test("a join's answer stands in for the next status read once", async (t) => {
  const concertId = randomUUID();
  await queue.join(concertId, "u1", freshToken());
  const { token } = await queue.join(concertId, "u2", freshToken());
  const recent = queue.recentJoinStatus(token);
  t.like(recent, { token, concertId, userId: "u2", state: "WAITING", position: 2, totalWaiting: 2 });
  t.is(queue.recentJoinStatus(token), undefined);
});

test("a token admitted or left since its join is read from Redis", async (t) => {
  const concertId = randomUUID();
  const admitted = (await queue.join(concertId, "u1", freshToken())).token;
  const left = (await queue.join(concertId, "u2", freshToken())).token;
  await queue.apply(concertId, [{ token: admitted, activeExpireMs: Date.now() + 60_000 }]);
  await queue.leave(left);
  t.is(queue.recentJoinStatus(admitted), undefined);
  t.is(queue.recentJoinStatus(left), undefined);
});

test("a join's answer standing in later is as of then: its clock moved on since Redis answered", async (t) => {
  const concertId = randomUUID();
  const reply = await queue.join(concertId, "u1", freshToken());
  const waitedFrom = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const recent = queue.recentJoinStatus(reply.token);
  // Four seconds is how long an answer may stand in; a machine too busy to wake within it reads Redis.
  if (Date.now() - waitedFrom >= 3900) return t.pass("woke too late for the answer to stand in");
  t.true(recent!.nowMs >= reply.status.nowMs + 100, `${recent!.nowMs - reply.status.nowMs} ms later`);
  t.like(recent, { token: reply.token, state: "WAITING", position: 1 });
});

test("a join whose commit took seconds still stands in after its answer", async (t) => {
  // The answer waits for PostgreSQL's group commit (seconds in a burst); a stream opened after it
  // must not find the join's status forgotten by the joins that Redis answered meanwhile.
  const concertId = randomUUID();
  const slow = await queue.join(concertId, "u1", freshToken());
  await new Promise((resolve) => setTimeout(resolve, 1200));
  await queue.join(concertId, "u2", freshToken());
  queue.joinAnswered(slow.token);
  t.like(queue.recentJoinStatus(slow.token), { token: slow.token, state: "WAITING", position: 1 });
});
