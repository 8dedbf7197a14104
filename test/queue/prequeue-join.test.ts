// The JOIN script's side of the prequeue, on Redis directly: a prequeue place is taken as given
// (ahead of any FIFO place) only until the line is marked opened, which every process does before
// it first admits after the opening (prequeue.ts); a join decided just before the opening that
// reaches Redis after that mark lines up FIFO instead of landing ahead of an admission made.

import test from "ava";
import { admissionRule } from "../../src/queue/admission-rule.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const { redis, queue } = redisQueueFixture("prequeue_join");

test("prequeue places stand ahead of FIFO places until the line is marked opened", async (t) => {
  const concertId = "00000000-0000-4000-8000-000000000001";
  const first = await queue.join(concertId, "late-riser", "a".repeat(32), "-100");
  t.is(first.seq, "-100");
  // The concert counts as seen now: its keys must be there for the next join (no QUEUESTATELOST).
  const second = await queue.join(concertId, "early-bird", "b".repeat(32), "-200");
  t.is(second.seq, "-200");
  t.is(second.status.position, 1, "a lower place is ahead, whoever joined first");

  const rule = {
    ...admissionRule({ maxActiveUsers: 0, activeTtlSeconds: 60, waitingTtlSeconds: 60, intervalMs: 1000 }),
  };
  // Redis's half of an admission step: the sweep, then moving who PostgreSQL admitted (nobody, at cap 0).
  await queue.sweep(concertId, rule);
  t.is((await queue.apply(concertId, [])).waiting, 2, "the admission step sweeps a prequeue-only line");

  const fifo = await queue.join(concertId, "after-opening", "c".repeat(32));
  t.is(fifo.seq, "1", "the FIFO counter starts behind the prequeue");
  t.is(fifo.status.position, 3);

  await redis.set(queue.keys.concert(concertId).prequeueOpened, "1");
  const straggler = await queue.join(concertId, "straggler", "d".repeat(32), "-300");
  t.is(straggler.seq, "2", "after the mark a prequeue place is not taken");
  t.is(straggler.status.position, 4);
  const rejoin = await queue.join(concertId, "early-bird", "e".repeat(32), "-200");
  t.is(rejoin.token, "b".repeat(32), "a member keeps the place");
});
