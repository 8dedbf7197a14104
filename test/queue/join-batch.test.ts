// Joins that arrive together share their Redis calls (redis-queue.ts JOIN_BATCH): one JOIN script
// call per concert and one call for the token records, on a private Redis whose command counts
// this file reads. Each join still answers as if it had run alone: FIFO places, one live place
// per user, a record the guard can read.

import test from "ava";
import { randomUUID } from "node:crypto";
import { createRedis } from "../../src/platform/redis/client.js";
import { createRedisQueue } from "../../src/queue/redis-queue.js";
import { startPrivateRedis, type PrivateRedis } from "../helpers/redis-server.js";

let server: PrivateRedis;
let redis: ReturnType<typeof createRedis>;
let queue: ReturnType<typeof createRedisQueue>;

test.before(async () => {
  server = await startPrivateRedis();
  redis = createRedis({ url: server.url, name: "join-batch-test" });
  await redis.connect();
  queue = createRedisQueue(redis, "jbt:");
});

test.after.always(async () => {
  redis?.disconnect();
  await server?.kill();
});

const freshToken = () => randomUUID().replaceAll("-", "");

/** Script calls (EVAL and EVALSHA) the server has run so far. */
async function scriptCalls(): Promise<number> {
  const stats = await redis.info("commandstats");
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(match[2]);
  return calls;
}

test.serial("200 joins sent together: two script calls per concert, FIFO places, one place per user", async (t) => {
  const [a, b] = [randomUUID(), randomUUID()];
  // Load the scripts and register both concerts first, so the count below is the joins' alone.
  await Promise.all([queue.join(a, "warm", freshToken()), queue.join(b, "warm", freshToken())]);
  const before = await scriptCalls();
  const users = Array.from({ length: 100 }, (_, i) => `u${i}`);
  const replies = await Promise.all([
    ...users.map((user) => queue.join(a, user, freshToken())),
    ...users.map((user) => queue.join(b, user, freshToken())),
    // The same user twice in one batch keeps one place.
    queue.join(a, "u0", freshToken()),
  ]);
  // JOIN and the token records, for each of the two concerts.
  t.is((await scriptCalls()) - before, 4);

  const ofA = replies.slice(0, 100);
  t.deepEqual(
    ofA.map((r) => r.seq),
    users.map((_, i) => String(i + 2)),
  );
  t.deepEqual(
    ofA.map((r) => r.status.position),
    users.map((_, i) => i + 2),
  );
  t.true(ofA.every((r) => r.status.state === "WAITING" && r.status.totalWaiting === 101));
  t.is(new Set(replies.map((r) => r.token)).size, 200);
  t.is(replies[200]!.token, ofA[0]!.token);
  t.is(replies[200]!.seq, "2");

  // Every token has its record: the guard finds it waiting, and its owner is known.
  const checks = await Promise.all(replies.map((r) => queue.validate(r.token)));
  t.true(checks.every((c) => c.kind === "waiting"));
});

test.serial("an admitted user joining again keeps the slot; a left one gets a new place at the tail", async (t) => {
  const concertId = randomUUID();
  const [first, second] = await Promise.all([
    queue.join(concertId, "x", freshToken()),
    queue.join(concertId, "y", freshToken()),
  ]);
  const expire = Date.now() + 60_000;
  await queue.apply(concertId, [{ token: first.token, activeExpireMs: expire }]);
  await queue.leave(second.token);
  const [again, back] = await Promise.all([
    queue.join(concertId, "x", freshToken()),
    queue.join(concertId, "y", freshToken()),
  ]);
  t.is(again.token, first.token);
  t.like(again.status, { state: "ACTIVE", activeExpireMs: expire });
  t.not(back.token, second.token);
  t.like(back, { seq: "3", status: { state: "WAITING", position: 1 } });
  t.like(await queue.validate(again.token), { kind: "active" });
});
