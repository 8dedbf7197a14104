// The recheck of slow joins (join-recheck.ts), on the shared Redis under this file's own key
// prefix: joins Redis still holds cost one script call per concert and are not merged again; a
// join Redis lost is merged back; a join that left meanwhile stays gone.

import test from "ava";
import { randomUUID } from "node:crypto";
import { createLogger } from "../../src/platform/logger.js";
import { createJoinRecheck } from "../../src/queue/join-recheck.js";
import type { MergeRow } from "../../src/queue/queue-scripts.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const { redis, queue } = redisQueueFixture("join-recheck");

const logger = createLogger("silent");

async function joined(concertId: string, userId: string): Promise<MergeRow> {
  const reply = await queue.join(concertId, userId, randomUUID().replaceAll("-", ""));
  return { token: reply.token, userId, seq: reply.seq, state: "WAITING", activeExpireMs: 0 };
}

/** The queue, with the calls the recheck makes counted. */
function counted() {
  const calls = { missing: 0, merged: [] as string[] };
  return {
    calls,
    redisQueue: {
      missing: (concertId: string, tokens: readonly string[]) => {
        calls.missing++;
        return queue.missing(concertId, tokens);
      },
      merge: (concertId: string, floor: string, rows: readonly MergeRow[]) => {
        calls.merged.push(...rows.map((row) => row.token));
        return queue.merge(concertId, floor, rows);
      },
    },
  };
}

test("joins Redis still holds are checked in one call per concert and not merged", async (t) => {
  const [a, b] = [randomUUID(), randomUUID()];
  const rows = await Promise.all([joined(a, "u1"), joined(a, "u2"), joined(b, "u3")]);
  const { calls, redisQueue } = counted();
  const recheck = createJoinRecheck({ redisQueue, logger });
  await Promise.all(rows.map((row, i) => recheck.recheck(i < 2 ? a : b, row)));
  t.is(calls.missing, 2);
  t.deepEqual(calls.merged, []);
});

test("a join Redis lost is merged back at its place; one that left stays gone", async (t) => {
  const concertId = randomUUID();
  const [first, lost, left] = [
    await joined(concertId, "u1"),
    await joined(concertId, "u2"),
    await joined(concertId, "u3"),
  ];
  const keys = queue.keys.concert(concertId);
  // As after Redis lost the join: the line and the owner no longer know the token.
  await redis.zrem(keys.waiting, lost.token);
  await redis.hdel(keys.owners, lost.token);
  await redis.hdel(keys.users, lost.userId);
  await queue.leave(left.token);
  const { calls, redisQueue } = counted();
  const recheck = createJoinRecheck({ redisQueue, logger });
  await Promise.all([first, lost, left].map((row) => recheck.recheck(concertId, row)));
  t.deepEqual(calls.merged.sort(), [lost.token, left.token].sort());
  t.is((await queue.status(lost.token, false))?.position, 2);
  t.is((await queue.status(left.token, false))?.state, "EXPIRED");
  t.is((await queue.status(first.token, false))?.position, 1);
});
