// PostgreSQL admits whichever store serves. While processes change store they may step one
// concert at once, some through Redis and some on the PostgreSQL fallback: run here directly, both
// kinds of step at once, round after round with slots given back in between. Never more active
// than the cap, nobody admitted twice, admissions in join order, and Redis's active set always
// within PostgreSQL's.

import { randomUUID } from "node:crypto";
import test from "ava";
import { loadConfig } from "../../src/config.js";
import { createRedis } from "../../src/platform/redis/client.js";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createJoinCommitter } from "../../src/queue/join-committer.js";
import { createPgQueue } from "../../src/queue/pg-queue.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import { createRedisQueue } from "../../src/queue/redis-queue.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";

const CAP = 3;
const USERS = 24;
const RULE: AdmissionRule = {
  cap: CAP,
  activeTtlMs: 600_000,
  waitingTtlMs: 600_000,
  intervalMs: 1000,
  stepLimit: 100,
  expectedSessionMs: 0,
};

const prefix = testKeyPrefix("one-admitter");
const redis = createRedis({ url: loadConfig({}).redisUrl, name: "one-admitter-test", commandTimeoutMs: 10_000 });
const redisQueue = createRedisQueue(redis, prefix);
let fixture: QueueDbFixture;
let db: QueueDb;

test.before(async () => {
  await redis.connect();
  // A process is cut off from Redis: fallback steps may run.
  fixture = await openQueueDb("one_admitter", { poolMax: 8, fallbackServes: true });
  ({ db } = fixture);
});

test.after.always(async () => {
  redis.disconnect();
  await removeTestKeys(prefix);
  await fixture?.stop();
});

test("steps through Redis and on the PostgreSQL fallback at once admit from one record", async (t) => {
  const pg = createPgQueue(db, { waitingTtlSeconds: 600 });
  const committer = createJoinCommitter({ db, maxRows: 100, maxDelayMs: 5 });
  const concertId = randomUUID();
  const line: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const { token, seq, status } = await redisQueue.join(concertId, `user-${i}`, randomUUID());
    await committer.commit({
      token,
      concertId,
      userId: `user-${i}`,
      seq,
      state: "WAITING",
      joinedAtMs: status.nowMs,
      activeExpireMs: 0,
    });
    line.push(token);
  }
  const throughRedis = async () => {
    const step = await pg.admit(concertId, RULE, {
      redis: { sweep: () => redisQueue.sweep(concertId, RULE), head: (n) => redisQueue.head(concertId, n) },
    });
    await redisQueue.apply(concertId, step.active);
    return step.admitted;
  };
  const onPostgres = async () => (await pg.admit(concertId, RULE, { fallbackSinceMs: 0 })).admitted;

  const admitted = new Set<string>();
  for (let round = 0; admitted.size < USERS && round < 3 * USERS; round++) {
    const steps = await Promise.all([throughRedis(), onPostgres(), throughRedis(), onPostgres()]);
    for (const token of steps.flat()) {
      t.false(admitted.has(token), `${token} admitted twice`);
      admitted.add(token);
    }
    const active = (
      await db.query<{ token: string }>("select token from queue_entry where concert_id = $1 and state = 'ACTIVE'", [
        concertId,
      ])
    ).map((r) => r.token);
    t.true(active.length <= CAP, `round ${round}: ${active.length} active`);
    const inRedis = await redis.zrange(redisQueue.keys.concert(concertId).active, "0", "-1");
    t.true(
      inRedis.every((token) => active.includes(token)),
      `round ${round}: Redis's active set within PostgreSQL's`,
    );
    // Give back up to two slots, record first, as LeaveQueue does.
    for (const token of active.slice(0, 2)) {
      await pg.end(token, false);
      await redisQueue.leave(token);
    }
  }
  t.is(admitted.size, USERS);
  const byAdmission = await db.query<{ token: string }>(
    "select token from queue_entry where concert_id = $1 order by admitted_at, seq",
    [concertId],
  );
  t.deepEqual(
    byAdmission.map((r) => r.token),
    line,
    "admitted in join order",
  );
});
