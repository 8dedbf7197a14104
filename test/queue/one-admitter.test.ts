// One admitter: PostgreSQL decides every admission, in Redis's order, under the concert lock, and
// only while Redis misses nothing. Run here directly: two processes' steps at once, round after
// round, with joins through Redis and joins a process cut off from Redis made on PostgreSQL
// (merged into Redis by a check before the steps), and slots given back in between. Never more
// active than the cap, nobody admitted twice, admissions in join order, and Redis's active set
// always within PostgreSQL's.

import { randomUUID } from "node:crypto";
import test from "ava";
import { Registry } from "prom-client";
import { createLogger } from "../../src/platform/logger.js";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createEndCommitter } from "../../src/queue/end-committer.js";
import { createJoinCommitter, joinRowOf } from "../../src/queue/join-committer.js";
import { admit } from "../../src/queue/pg-admission.js";
import { createPgQueue } from "../../src/queue/pg-queue.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import { createQueueMode } from "../../src/queue/queue-mode.js";
import { createRedisQueue } from "../../src/queue/redis-queue.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const CAP = 3;
const ROUNDS = 8;
const RULE: AdmissionRule = {
  cap: CAP,
  activeTtlMs: 600_000,
  waitingTtlMs: 600_000,
  intervalMs: 1000,
  stepLimit: 100,
  expectedSessionMs: 0,
};

const { redis, queue, prefix } = redisQueueFixture("one-admitter");
/** Two processes' views of the one Redis. */
const processes = [queue, createRedisQueue(redis, prefix)];
let fixture: QueueDbFixture;
let db: QueueDb;

test.before(async () => {
  fixture = await openQueueDb("one_admitter", { poolMax: 8 });
  ({ db } = fixture);
});

test.after.always(async () => {
  await fixture?.stop();
});

test("steps of two processes at once, with joins made through Redis and on PostgreSQL, admit from one record", async (t) => {
  const pg = createPgQueue(db);
  const committer = createJoinCommitter({ db, maxRows: 100, maxDelayMs: 5 });
  const ends = createEndCommitter(db);
  const mode = createQueueMode({
    redis,
    redisQueue: processes[0]!,
    db,
    logger: createLogger("silent"),
    registry: new Registry(),
    rebuildDelayMs: 0,
  });
  const concertId = randomUUID();
  const line: string[] = [];
  const admitted = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < 2; i++) {
      const userId = `redis-${round}-${i}`;
      const reply = await processes[i]!.join(concertId, userId, randomUUID());
      await committer.commit(joinRowOf(concertId, userId, reply));
      line.push(reply.token);
    }
    const [onPostgres] = await pg.joinMany([{ concertId, userId: `pg-${round}`, freshToken: randomUUID() }]);
    line.push(onPostgres!.token);
    await mode.check();
    t.is(mode.state, "redis");
    const steps = await Promise.all(
      [...processes, ...processes].map(async (redisQueue) => {
        const step = await admit(db, concertId, RULE, redisQueue);
        await redisQueue.apply(concertId, step.active, [...step.expired, ...step.abandoned]);
        return step.admitted;
      }),
    );
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
    const inRedis = await redis.zrange(processes[0]!.keys.concert(concertId).active, "0", "-1");
    t.true(
      inRedis.every((token) => active.includes(token)),
      `round ${round}: Redis's active set within PostgreSQL's`,
    );
    // Give back up to two slots, record first, as LeaveQueue does.
    for (const token of active.slice(0, 2)) {
      await ends.commit(token);
      await processes[round % 2]!.leave(token);
    }
  }
  const byAdmission = await db.query<{ token: string }>(
    "select token from queue_entry where concert_id = $1 and admitted_at is not null order by admitted_at, seq",
    [concertId],
  );
  t.deepEqual(
    byAdmission.map((r) => r.token),
    line.slice(0, admitted.size),
    "admitted in join order",
  );
  t.true(admitted.size >= ROUNDS * 2, `${admitted.size} admitted`);
});
