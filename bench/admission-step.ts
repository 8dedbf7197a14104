// What one admission step costs now that PostgreSQL, the record, decides every admission: one
// concert, a line of `--line` users, a cap of `--cap`, and an active TTL of 1 ms, so that every
// step ends the previous step's admissions and admits a full cap again (the busiest step there
// is). Mean ms and PostgreSQL statements per step (sweep and head in Redis, the decision in
// PostgreSQL, then Redis moves the admitted).
//
//   node --import tsx bench/admission-step.ts [--steps N] [--cap N] [--line N]

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import { closeORM, initORM, migrateUp } from "../src/platform/db/orm.js";
import { createRedis } from "../src/platform/redis/client.js";
import { createJoinCommitter, joinRowOf } from "../src/queue/join-committer.js";
import { admit } from "../src/queue/pg-admission.js";
import { createQueueDb } from "../src/queue/queue-db.js";
import { QueueEntry } from "../src/queue/queue-entry.entity.js";
import { createRedisQueue } from "../src/queue/redis-queue.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { removeTestKeys, testKeyPrefix } from "../test/helpers/redis-server.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "20" },
    cap: { type: "string", default: "1000" },
    line: { type: "string", default: "50000" },
  },
});
const [steps, cap, lineLength] = [Number(values.steps), Number(values.cap), Number(values.line)];
const rule = {
  cap,
  activeTtlMs: 1,
  waitingTtlMs: 3_600_000,
  intervalMs: 1000,
  stepLimit: 10_000,
  expectedSessionMs: 0,
};

const database = await createTestDatabase("admission_step");
const { orm } = await initORM({ databaseUrl: database.url, entities: [QueueEntry], poolMax: 16 });
const prefix = testKeyPrefix("admission-step");
const redis = createRedis({ url: loadConfig({}).redisUrl, name: "admission-step", commandTimeoutMs: 10_000 });
try {
  await redis.connect();
  await migrateUp(orm);
  let statements = 0;
  const db = await createQueueDb(orm, () => statements++);
  const redisQueue = createRedisQueue(redis, prefix);
  const committer = createJoinCommitter({ db, maxRows: 1000, maxDelayMs: 20 });
  const concertId = randomUUID();
  for (let i = 0; i < lineLength; i += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, lineLength - i) }, async (_, j) => {
        const userId = `u-${i + j}`;
        await committer.commit(joinRowOf(concertId, userId, await redisQueue.join(concertId, userId, randomUUID())));
      }),
    );
  }
  const step = async () => {
    const done = await admit(db, concertId, rule, redisQueue);
    await redisQueue.apply(concertId, done.active, [...done.expired, ...done.abandoned]);
    return done.admitted.length;
  };
  for (const name of ["admission step"]) {
    await step(); // warm-up, and the first step's admissions for the next to end
    const before = statements;
    const started = performance.now();
    let admitted = 0;
    for (let i = 0; i < steps; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2)); // let the 1 ms slots run out
      admitted += await step();
    }
    const ms = (performance.now() - started) / steps;
    console.log(
      `${name}: ${ms.toFixed(1)} ms per step (2 ms of it waiting), ${((statements - before) / steps).toFixed(1)} statements per step, ${(admitted / steps).toFixed(0)} admitted per step`,
    );
  }
} finally {
  redis.disconnect();
  await removeTestKeys(prefix);
  await closeORM(orm);
  await database.drop();
}
