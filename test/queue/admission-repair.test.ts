// An admission step through Redis hands Redis the ACTIVE tokens PostgreSQL holds, so a step whose
// Redis half was lost (a crash between its commit and Redis) is repaired by a later one. A step
// hands over only the tokens admitted in the last RECENT_ADMISSIONS_S, unless asked to repair
// all (the admission loop does every few seconds): a full line is not read and sent ten times a
// second. Here a lost half is made by hand: rows made ACTIVE in PostgreSQL that Redis still has
// waiting.

import { randomUUID } from "node:crypto";
import test from "ava";
import { loadConfig } from "../../src/config.js";
import { createRedis } from "../../src/platform/redis/client.js";
import type { AdmissionRule } from "../../src/queue/admission-rule.js";
import { createJoinCommitter, joinRowOf } from "../../src/queue/join-committer.js";
import { admit, RECENT_ADMISSIONS_S } from "../../src/queue/pg-admission.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import { createRedisQueue } from "../../src/queue/redis-queue.js";
import { HAND_STEPPED_RULE, openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";

const RULE = HAND_STEPPED_RULE;

const prefix = testKeyPrefix("admission-repair");
const redis = createRedis({ url: loadConfig({}).redisUrl, name: "admission-repair-test", commandTimeoutMs: 10_000 });
const redisQueue = createRedisQueue(redis, prefix);
let fixture: QueueDbFixture;
let db: QueueDb;

test.before(async () => {
  await redis.connect();
  fixture = await openQueueDb("admission_repair", { poolMax: 4 });
  ({ db } = fixture);
});

test.after.always(async () => {
  redis.disconnect();
  await removeTestKeys(prefix);
  await fixture?.stop();
});

test("a lost Redis half is repaired by the next step if recent, by the next full repair if older", async (t) => {
  const committer = createJoinCommitter({ db, maxRows: 100, maxDelayMs: 5 });
  const concertId = randomUUID();
  const tokens: string[] = [];
  for (const userId of ["old", "recent", "waiting"]) {
    const reply = await redisQueue.join(concertId, userId, randomUUID().replaceAll("-", ""));
    await committer.commit(joinRowOf(concertId, userId, reply));
    tokens.push(reply.token);
  }
  const [old, recent, waiting] = tokens as [string, string, string];
  // Admitted in PostgreSQL, never moved in Redis: one long ago, one just now.
  const lose = (token: string, agoSeconds: number) =>
    db.query(
      `update queue_entry set state = 'ACTIVE', admitted_at = now() - make_interval(secs => $2),
         active_expire_at = now() + interval '10 minutes' where token = $1`,
      [token, agoSeconds],
    );
  await lose(old, RECENT_ADMISSIONS_S + 60);
  await lose(recent, 0);
  // No free slot is taken by the steps below: only the repair is looked at.
  const full: AdmissionRule = { ...RULE, cap: 2 };
  const step = (repairAll: boolean) => admit(db, concertId, full, redisQueue, repairAll);
  const stateInRedis = async (token: string) => (await redisQueue.status(token, false))?.state;

  const quick = await step(false);
  t.deepEqual(
    quick.active.map((a) => a.token),
    [recent],
  );
  await redisQueue.apply(concertId, quick.active, []);
  t.is(await stateInRedis(recent), "ACTIVE");
  t.is(await stateInRedis(old), "WAITING");

  const repair = await step(true);
  t.deepEqual(repair.active.map((a) => a.token).sort(), [old, recent].sort());
  await redisQueue.apply(concertId, repair.active, []);
  t.is(await stateInRedis(old), "ACTIVE");
  t.is(await stateInRedis(waiting), "WAITING");
  t.deepEqual((await redisQueue.head(concertId, 10))[0], [waiting]);
});
